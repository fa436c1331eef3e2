-- Per shard, per message: the partial aggregation states the initiator merges into
-- `messages` (verdicts.sql). On one server the "shard" is the table itself.
SELECT
    producer, stream, seq,
    countIfState(stage = 0) AS s_produce,
    countIfState(stage = 1 AND outcome = 0) AS s_ok_acks,
    countIfState(stage = 1) AS s_answers,
    countIfState(stage = 2) AS s_deliveries,
    minState(partition) AS s_partition,
    maxState(end_ns) AS s_last_end,
    uniqExactIfState(position, (stage = 1 AND outcome = 0 OR stage IN (2, 200)) AND position IS NOT NULL) AS s_copies,
    minIfState(toNullable(start_ns), stage = 0 AND NOT ledger) AS s_produced,
    minIfState(toNullable(end_ns), stage = 1 AND outcome = 0 AND NOT ledger) AS s_stored,
    anyIfState(message_id, message_id IS NOT NULL
        AND message_id != concat(producer, ':', stream, ':', toString(seq))) AS s_message_id,
    maxState(ledger) AS s_ledger,
    groupUniqArrayState(trace_id) AS s_trace_ids,
    groupUniqArrayIfState(assumeNotNull(position),
        (stage = 1 AND outcome = 0 OR stage IN (2, 200)) AND position IS NOT NULL) AS s_positions
FROM rows
GROUP BY producer, stream, seq
