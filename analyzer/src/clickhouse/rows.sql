-- One row per stage event (over `spans`, spans.sql), as the readers' columns hold them: stage
-- codes 0 produce, 1 store_ack, 2 deliver, 3 consume_ack, 200 an earlier ledger copy
-- (reader::columns::stage); outcome codes 0 ok, 1 ack, 2 skip_duplicate, 3 any other.
-- A full span gives its own event and, where ledger mode names an earlier copy, a row for
-- that copy; a ledger gives every seq of its ranges at each stage it stands for (a store_ack
-- ledger's seq is a produce and an ok answer). All through one ARRAY JOIN over (seq, stage)
-- pairs, so that `spans` appears once here: ClickHouse's analyzer copies a CTE's whole tree
-- into every place that names it, and planning time grew with those copies (three per
-- aggregation made a verdict query's tree 100,000 nodes and its planning seconds long).
rows AS (
    SELECT
        producer, stream, event.1 AS seq, event.2 AS stage,
        multiIf(is_ledger, CAST(multiIf(stage = 1, 0, stage = 3, 1, NULL), 'Nullable(UInt8)'),
                stage = 200 OR NOT mapContains(a, {a_outcome:String}), CAST(NULL, 'Nullable(UInt8)'),
                toUInt8(multiIf(a[{a_outcome:String}] = {o_ok:String}, 0, a[{a_outcome:String}] = {o_ack:String}, 1,
                                a[{a_outcome:String}] = {o_skip:String}, 2, 3))) AS outcome,
        multiIf(is_ledger, CAST(NULL, 'Nullable(String)'), stage = 200, earlier,
                mapContains(a, {a_position:String}), a[{a_position:String}], NULL) AS position,
        if(mapContains(a, {a_group:String}), a[{a_group:String}], NULL) AS grp,
        if(mapContains(a, {a_partition:String}), a[{a_partition:String}], NULL) AS partition,
        multiIf(is_ledger, if(stage = 2, toInt64(1), NULL), stage = 200, CAST(NULL, 'Nullable(Int64)'),
                toInt64OrNull(a[{a_delivery_count:String}])) AS delivery_count,
        start_ns, end_ns, trace_id,
        if(NOT is_ledger AND stage != 200 AND mapContains(a, {a_message_id:String}),
           a[{a_message_id:String}], NULL) AS message_id,
        is_ledger AS ledger
    FROM (
        SELECT a, producer, stream, seq_value, start_ns, end_ns, trace_id, is_ledger, problem,
               toUInt8(multiIf(stage_text = {s_produce:String}, 0, stage_text = {s_store_ack:String}, 1,
                               stage_text = {s_deliver:String}, 2, 3)) AS full_stage,
               if(NOT is_ledger AND full_stage = 2 AND mapContains(a, {a_ledger_position:String}),
                  a[{a_ledger_position:String}], NULL) AS earlier,
               -- (Only a good ledger's ranges are read: they alone were checked and bounded.)
               if(is_ledger,
                  arrayFlatten(arrayMap(s -> arrayMap(st -> (toInt64(s), st),
                          multiIf(ledger_of = {s_store_ack:String}, [toUInt8(0), toUInt8(1)],
                                  ledger_of = {s_deliver:String}, [toUInt8(2)], [toUInt8(3)])),
                      arrayFlatten(arrayMap(r -> range(r.1, r.2 + 1), if(is_ledger AND problem = '', ranges, []))))),
                  if(earlier IS NULL, [(assumeNotNull(seq_value), full_stage)],
                     [(assumeNotNull(seq_value), full_stage), (assumeNotNull(seq_value), toUInt8(200))]))
                  AS events
        FROM spans
        WHERE (numbered OR is_ledger AND problem = '') AND selected
    )
    ARRAY JOIN events AS event
)
