-- Per shard: what the messaging spans without numbering point at: their parents and links
-- (kind 'span', as trace id and span id) and their message ids (kind 'id'), each id also as
-- a default id would be written, `{producer}:{stream}:{seq}` with its seq read as a number
-- (kind 'default').
SELECT DISTINCT kind, t, r
FROM (
    SELECT
        arrayJoin(arrayConcat(
            [('span', trace_id, parent_id)],
            arrayMap((lt, ls) -> ('span', lt, ls), link_trace_ids, link_span_ids),
            if(message_id = '', [], [('id', '', message_id)]),
            if(default_id IS NULL, [], [('default', '', assumeNotNull(default_id))])
        )) AS ref,
        ref.1 AS kind,
        ref.2 AS t,
        ref.3 AS r
    FROM (
        SELECT
            trace_id,
            parent_id,
            link_trace_ids,
            link_span_ids,
            arrayFirst(v -> v != '', arrayMap(k -> a[k], {message_id_keys:Array(String)})) AS message_id,
            concat(
                substring(message_id, 1, length(message_id) - position(reverse(message_id), ':')),
                ':',
                toString(toInt64OrNull(substring(message_id, length(message_id) - position(reverse(message_id), ':') + 2)))
            ) AS default_id
        FROM spans
        WHERE semconv
    )
)
WHERE r != ''
