-- Per shard: what of the numbered messages a span without numbering may point at: each
-- produce span and its parent (a client span wrapping mqtrace's send is the same send), each
-- message id, each default id `{producer}:{stream}:{seq}`.
SELECT DISTINCT ref.1 AS kind, ref.2 AS t, ref.3 AS r
FROM spans
ARRAY JOIN arrayConcat(
    if(stage_text = {s_produce:String}, [('span', trace_id, span_id), ('span', trace_id, parent_id)], []),
    [('id', '', a[{a_message_id:String}]),
     ('default', '', concat(producer, ':', stream, ':', toString(seq_value)))]
) AS ref
WHERE numbered AND ref.3 != ''
