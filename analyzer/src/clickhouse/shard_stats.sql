-- Per shard: counts, the malformed spans, the window, as partial states.
SELECT
    countState() AS s_spans,
    countIfState(messaging) AS s_messaging,
    countIfState(problem != '') AS s_malformed,
    groupArrayIfState(100)(tuple(problem, trace_id, span_id), problem != '') AS s_malformed_listed,
    minIfState(toNullable(start_ns), messaging AND problem = '') AS s_window_start,
    countIfState(messaging AND problem = '') AS s_has_end,
    argMaxIfState(tuple(end_ns, span_name, trace_id), end_ns, messaging AND problem = '') AS s_window_end,
    countIfState(semconv) AS s_unnumbered
FROM spans
