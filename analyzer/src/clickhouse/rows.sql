-- One row per stage event (over `spans`, spans.sql), as the readers' columns hold them: stage
-- codes 0 produce, 1 store_ack, 2 deliver, 3 consume_ack, 200 an earlier ledger copy
-- (reader::columns::stage); outcome codes 0 ok, 1 ack, 2 skip_duplicate, 3 any other.
-- One row per stage event: full spans, the earlier copies ledger-mode repeats name, and every
-- seq of every ledger (a store_ack ledger's seq is a produce and an ok answer).
full_rows AS (
    SELECT
        producer, stream, assumeNotNull(seq_value) AS seq,
        toUInt8(multiIf(stage_text = {s_produce:String}, 0, stage_text = {s_store_ack:String}, 1,
                        stage_text = {s_deliver:String}, 2, 3)) AS stage,
        if(mapContains(a, {a_outcome:String}),
           toUInt8(multiIf(a[{a_outcome:String}] = {o_ok:String}, 0, a[{a_outcome:String}] = {o_ack:String}, 1,
                           a[{a_outcome:String}] = {o_skip:String}, 2, 3)),
           NULL) AS outcome,
        if(mapContains(a, {a_position:String}), a[{a_position:String}], NULL) AS position,
        if(mapContains(a, {a_group:String}), a[{a_group:String}], NULL) AS grp,
        if(mapContains(a, {a_partition:String}), a[{a_partition:String}], NULL) AS partition,
        toInt64OrNull(a[{a_delivery_count:String}]) AS delivery_count,
        start_ns, end_ns, trace_id,
        if(mapContains(a, {a_message_id:String}), a[{a_message_id:String}], NULL) AS message_id,
        if(stage = 2 AND mapContains(a, {a_ledger_position:String}), a[{a_ledger_position:String}], NULL) AS earlier,
        false AS ledger
    FROM spans
    WHERE numbered AND selected
),
rows AS (
    SELECT producer, stream, seq, stage, outcome, position, grp, partition, delivery_count,
           start_ns, end_ns, trace_id, message_id, ledger
    FROM full_rows
    UNION ALL
    SELECT producer, stream, seq, toUInt8(200), CAST(NULL, 'Nullable(UInt8)'), earlier, grp, partition,
           CAST(NULL, 'Nullable(Int64)'), start_ns, end_ns, trace_id, CAST(NULL, 'Nullable(String)'), false
    FROM full_rows
    WHERE earlier IS NOT NULL
    UNION ALL
    SELECT producer, stream, seq, stage,
           CAST(multiIf(stage = 1, 0, stage = 3, 1, NULL), 'Nullable(UInt8)') AS outcome,
           CAST(NULL, 'Nullable(String)'),
           if(mapContains(a, {a_group:String}), a[{a_group:String}], NULL),
           if(mapContains(a, {a_partition:String}), a[{a_partition:String}], NULL),
           CAST(if(stage = 2, 1, NULL), 'Nullable(Int64)'),
           start_ns, end_ns, trace_id, CAST(NULL, 'Nullable(String)'), true
    FROM spans
    ARRAY JOIN
        arrayMap(x -> toInt64(x), arrayFlatten(arrayMap(r -> range(r.1, r.2 + 1), ranges))) AS seq
    ARRAY JOIN
        multiIf(ledger_of = {s_store_ack:String}, [toUInt8(0), toUInt8(1)],
                ledger_of = {s_deliver:String}, [toUInt8(2)], [toUInt8(3)]) AS stage
    WHERE is_ledger AND problem = '' AND selected
)
