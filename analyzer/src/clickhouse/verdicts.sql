-- SPEC §4's verdicts over `spans` (spans.sql), stated for ClickHouse: the same steps as the
-- polars plans of analyzer/src/findings (messages.rs, gaps.rs, groups.rs), step for step, with
-- stage codes 0 produce, 1 store_ack, 2 deliver, 3 consume_ack, 200 an earlier ledger copy
-- (reader::columns::stage) and outcome codes 0 ok, 1 ack, 2 skip_duplicate, 3 any other.
-- analyzer/tests/clickhouse.rs keeps the two engines agreeing on every finding kind.

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
),
-- Stage 1 (messages.rs): one row per message.
messages AS (
    SELECT
        producer, stream, seq,
        countIf(stage = 0) AS m_produce,
        countIf(stage = 1 AND outcome = 0) AS m_ok_acks,
        countIf(stage = 1) AS m_answers,
        countIf(stage = 2) AS m_deliveries,
        min(partition) AS partition,
        max(end_ns) AS last_end,
        uniqExactIf(position, (stage = 1 AND outcome = 0 OR stage IN (2, 200)) AND position IS NOT NULL) AS m_copies
    FROM rows
    GROUP BY producer, stream, seq
),
message_findings AS (
    SELECT {k_lost:String} AS kind, CAST({w_produce:String}, 'Nullable(String)') AS stage_name,
           producer, stream, seq, CAST(NULL, 'Nullable(String)') AS grp,
           CAST(m_produce, 'Nullable(Int64)') AS attempts, CAST(m_answers, 'Nullable(Int64)') AS answers,
           CAST(NULL, 'Nullable(Int64)') AS ok_acks, CAST(NULL, 'Nullable(Bool)') AS two_positions,
           CAST(NULL, 'Nullable(Int64)') AS deliveries
    FROM messages WHERE m_produce > 0 AND m_ok_acks = 0 AND m_deliveries = 0
    UNION ALL
    SELECT {k_duplicate:String}, CAST({w_produce:String}, 'Nullable(String)'), producer, stream, seq,
           NULL, NULL, NULL, CAST(m_ok_acks, 'Nullable(Int64)'), CAST(m_copies >= 2, 'Nullable(Bool)'), NULL
    FROM messages WHERE m_copies >= 2 OR m_copies = 0 AND m_ok_acks >= 2
    UNION ALL
    SELECT {k_telemetry_gap:String}, CAST(NULL, 'Nullable(String)'), producer, stream, seq,
           NULL, NULL, NULL, NULL, NULL, CAST(m_deliveries, 'Nullable(Int64)')
    FROM messages WHERE m_deliveries > 0 AND m_produce = 0
),
-- gaps.rs: seqs no span carries, between seqs of the same stream that some span does.
holes AS (
    SELECT producer, stream, seq AS prev_seq, next_seq, next_seq - seq - 1 AS width
    FROM (
        SELECT producer, stream, seq,
               leadInFrame(seq, 1, toInt64(0)) OVER (PARTITION BY producer, stream ORDER BY seq ASC
                   ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS next_seq
        FROM messages
    )
    WHERE next_seq > seq + 1
),
unobserved AS (
    SELECT {k_unobserved:String} AS kind, CAST(NULL, 'Nullable(String)') AS stage_name, producer, stream,
           arrayJoin(range(prev_seq + 1, next_seq)) AS seq,
           prev_seq, next_seq, CAST(NULL, 'Nullable(Int64)') AS stands_for
    FROM holes WHERE width <= {max_gap:Int64}
    UNION ALL
    SELECT {k_unobserved:String}, CAST(NULL, 'Nullable(String)'), producer, stream, prev_seq + 1,
           prev_seq, next_seq, CAST(width, 'Nullable(Int64)')
    FROM holes WHERE width > {max_gap:Int64}
),
-- groups.rs: expected groups, what each group did with each message, high-water marks.
expected AS (
    SELECT producer, stream, assumeNotNull(grp) AS grp, min(seq) AS first_seq
    FROM rows WHERE stage = 2 AND grp IS NOT NULL
    GROUP BY producer, stream, grp
),
activity AS (
    SELECT
        producer, stream, seq, assumeNotNull(grp) AS grp,
        countIf(stage = 2) AS delivered,
        countIf(stage = 3 AND outcome IN (1, 2)) AS settled_ok,
        countIf(stage = 3 AND outcome = 1) AS acks,
        countIf(stage = 3) AS settles,
        maxIfOrNull(delivery_count, stage = 2) AS max_delivery_count,
        countIf(stage IN (2, 200) AND position IS NOT NULL) AS positioned,
        uniqExactIf(position, stage IN (2, 200) AND position IS NOT NULL) AS copies_delivered,
        if(countIf(stage = 2 AND position IS NOT NULL) > 0,
           argMaxIf(position, start_ns, stage = 2 AND position IS NOT NULL), NULL) AS delivered_at
    FROM rows WHERE grp IS NOT NULL
    GROUP BY producer, stream, seq, grp
),
high_part AS (
    SELECT producer, stream, assumeNotNull(grp) AS grp, assumeNotNull(partition) AS partition,
           maxIfOrNull(seq, stage = 2) AS delivered_part, maxIfOrNull(seq, stage = 3) AS settled_part
    FROM rows WHERE grp IS NOT NULL AND partition IS NOT NULL AND stage IN (2, 3)
    GROUP BY producer, stream, grp, partition
),
high_any AS (
    SELECT producer, stream, assumeNotNull(grp) AS grp,
           maxIfOrNull(seq, stage = 2) AS delivered_any, maxIfOrNull(seq, stage = 3) AS settled_any
    FROM rows WHERE grp IS NOT NULL AND stage IN (2, 3)
    GROUP BY producer, stream, grp
),
pairs AS (
    SELECT
        m.producer AS producer, m.stream AS stream, m.seq AS seq, e.grp AS grp,
        m.m_ok_acks AS ok_acks, m.m_deliveries AS deliveries, m.partition AS partition, m.last_end AS last_end,
        ifNull(t.delivered, 0) AS delivered, ifNull(t.settled_ok, 0) AS settled_ok,
        ifNull(t.acks, 0) AS acks, ifNull(t.settles, 0) AS settles,
        ifNull(t.positioned, 0) AS positioned, ifNull(t.copies_delivered, 0) AS copies_delivered,
        t.max_delivery_count AS max_delivery_count, t.delivered_at AS delivered_at,
        if(m.partition IS NOT NULL, hp.delivered_part, ha.delivered_any) AS delivered_mark,
        if(m.partition IS NOT NULL, hp.settled_part, ha.settled_any) AS settled_mark
    FROM messages AS m
    INNER JOIN expected AS e ON e.producer = m.producer AND e.stream = m.stream
    LEFT JOIN activity AS t ON t.producer = m.producer AND t.stream = m.stream AND t.seq = m.seq AND t.grp = e.grp
    LEFT JOIN high_part AS hp ON hp.producer = m.producer AND hp.stream = m.stream AND hp.grp = e.grp
                              AND hp.partition = m.partition
    LEFT JOIN high_any AS ha ON ha.producer = m.producer AND ha.stream = m.stream AND ha.grp = e.grp
    WHERE m.seq >= e.first_seq AND NOT (m.m_produce > 0 AND m.m_ok_acks = 0 AND m.m_deliveries = 0)
),
pair_verdicts AS (
    SELECT *,
        ifNull(delivered_mark > seq, false) OR last_end < {cutoff:Int64} AS delivered_passed,
        ifNull(settled_mark > seq, false) OR last_end < {cutoff:Int64} AS settled_passed,
        (ok_acks > 0 OR deliveries > 0) AND delivered = 0 AND delivered_passed AS lost_store,
        delivered > 0 AND settled_ok = 0 AND settled_passed AS lost_consume,
        acks >= 2 AS duplicate_consume,
        (positioned > copies_delivered OR ifNull(max_delivery_count >= 2, false)
            OR positioned = 0 AND delivered >= 2) AND settled_ok >= 1 AS redelivered,
        delivered = 0 AND NOT delivered_passed OR delivered > 0 AND settled_ok = 0 AND NOT settled_passed AS in_flight
    FROM pairs
),
pair_findings AS (
    SELECT
        multiIf(lost_store OR lost_consume, {k_lost:String}, duplicate_consume, {k_duplicate:String},
                redelivered, {k_redelivered:String}, {k_in_flight:String}) AS kind,
        CAST(multiIf(lost_store, {w_store:String}, lost_consume OR duplicate_consume, {w_consume:String}, NULL),
             'Nullable(String)') AS stage_name,
        producer, stream, seq, CAST(grp, 'Nullable(String)') AS grp,
        toInt64(ok_acks) AS ok_acks, toInt64(delivered) AS delivered, toInt64(settles) AS settles,
        toInt64(acks) AS acks,
        multiIf(lost_store AND delivered_mark > seq, delivered_mark,
                lost_consume AND NOT lost_store AND settled_mark > seq, settled_mark, NULL) AS passed_seq,
        last_end, delivered_at
    FROM pair_verdicts
    WHERE lost_store OR lost_consume OR duplicate_consume OR redelivered OR in_flight
),
findings AS (
    SELECT kind, stage_name, producer, stream, seq, grp,
           attempts, answers, ok_acks, two_positions, deliveries,
           CAST(NULL, 'Nullable(Int64)') AS prev_seq, CAST(NULL, 'Nullable(Int64)') AS next_seq,
           CAST(NULL, 'Nullable(Int64)') AS stands_for,
           CAST(NULL, 'Nullable(Int64)') AS delivered, CAST(NULL, 'Nullable(Int64)') AS settles,
           CAST(NULL, 'Nullable(Int64)') AS acks, CAST(NULL, 'Nullable(Int64)') AS passed_seq,
           CAST(NULL, 'Nullable(Int64)') AS last_end, CAST(NULL, 'Nullable(String)') AS delivered_at
    FROM message_findings
    UNION ALL
    SELECT kind, stage_name, producer, stream, seq, CAST(NULL, 'Nullable(String)'),
           NULL, NULL, NULL, NULL, NULL, prev_seq, next_seq, stands_for,
           NULL, NULL, NULL, NULL, NULL, NULL
    FROM unobserved
    UNION ALL
    SELECT kind, stage_name, producer, stream, seq, grp,
           NULL, NULL, ok_acks, NULL, NULL, NULL, NULL, NULL,
           delivered, settles, acks, passed_seq, last_end, delivered_at
    FROM pair_findings
),
-- The details of the messages with a finding (messages.rs `details`), looked up for those
-- only.
details AS (
    SELECT
        producer, stream, seq,
        min(partition) AS partition,
        anyIf(message_id, message_id IS NOT NULL
              AND message_id != concat(producer, ':', stream, ':', toString(seq))) AS message_id,
        max(ledger) AS ledger,
        arraySort(groupUniqArray(trace_id)) AS trace_ids,
        arraySort(groupUniqArrayIf(assumeNotNull(position),
            (stage = 1 AND outcome = 0 OR stage IN (2, 200)) AND position IS NOT NULL)) AS positions
    FROM rows
    WHERE (producer, stream, seq) IN (SELECT producer, stream, seq FROM findings)
    GROUP BY producer, stream, seq
)
