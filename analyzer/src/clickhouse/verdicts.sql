-- SPEC §4's verdicts, stated for ClickHouse: the same steps as the polars plans of
-- analyzer/src/findings (messages.rs, gaps.rs, groups.rs), step for step. The aggregations
-- over the rows run per shard as partial states (shard_*.sql, put in by sql.rs: a subquery
-- on one server, `cluster(NAME, view(…))` on a cluster) and
-- are merged here, at the initiator; the rest reads only merged rows.
-- analyzer/tests/clickhouse.rs keeps the two engines agreeing on every finding kind.

-- Stage 1 (messages.rs): one row per message.
messages AS @materialized@(
    SELECT
        producer, stream, seq,
        countIfMerge(s_produce) AS m_produce,
        countIfMerge(s_ok_acks) AS m_ok_acks,
        countIfMerge(s_answers) AS m_answers,
        countIfMerge(s_deliveries) AS m_deliveries,
        minMerge(s_partition) AS partition,
        maxMerge(s_last_end) AS last_end,
        uniqExactIfMerge(s_copies) AS m_copies,
        minIfMerge(s_produced) AS produced,
        minIfMerge(s_stored) AS stored,
        anyIfMerge(s_message_id) AS message_id,
        maxMerge(s_ledger) AS ledger,
        groupUniqArrayMerge(s_trace_ids) AS trace_ids,
        groupUniqArrayIfMerge(s_positions) AS positions
    FROM @messages@
    GROUP BY producer, stream, seq
),
message_findings AS (
    -- One pass over the messages (each CTE named is a copy of its tree, see rows.sql): k is
    -- 1 lost/produce, 2 duplicate/produce, 3 telemetry_gap, for each that applies.
    SELECT
        multiIf(k = 1, {k_lost:String}, k = 2, {k_duplicate:String}, {k_telemetry_gap:String}) AS kind,
        CAST(if(k = 3, NULL, {w_produce:String}), 'Nullable(String)') AS stage_name,
        producer, stream, seq, CAST(NULL, 'Nullable(String)') AS grp,
        CAST(if(k = 1, m_produce, NULL), 'Nullable(Int64)') AS attempts,
        CAST(if(k = 1, m_answers, NULL), 'Nullable(Int64)') AS answers,
        CAST(if(k = 2, m_ok_acks, NULL), 'Nullable(Int64)') AS ok_acks,
        CAST(if(k = 2, m_copies >= 2, NULL), 'Nullable(Bool)') AS two_positions,
        CAST(if(k = 3, m_deliveries, NULL), 'Nullable(Int64)') AS deliveries
    FROM messages
    ARRAY JOIN arrayFilter(k -> k = 1 AND m_produce > 0 AND m_ok_acks = 0 AND m_deliveries = 0
                                OR k = 2 AND (m_copies >= 2 OR m_copies = 0 AND m_ok_acks >= 2)
                                OR k = 3 AND m_deliveries > 0 AND m_produce = 0,
                           [1, 2, 3]) AS k
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
    -- A hole up to --max-gap wide lists its seqs; a wider one is one row standing for them.
    SELECT {k_unobserved:String} AS kind, CAST(NULL, 'Nullable(String)') AS stage_name, producer, stream,
           arrayJoin(range(prev_seq + 1, if(width <= {max_gap:Int64}, next_seq, prev_seq + 2))) AS seq,
           prev_seq, next_seq, CAST(if(width <= {max_gap:Int64}, NULL, width), 'Nullable(Int64)') AS stands_for
    FROM holes
),
-- groups.rs: what each group did with each message, the expected groups, the high-water
-- marks.
activity AS @materialized@(
    SELECT
        producer, stream, seq, grp,
        countIfMerge(s_delivered) AS delivered,
        countIfMerge(s_settled_ok) AS settled_ok,
        countIfMerge(s_acks) AS acks,
        countIfMerge(s_settles) AS settles,
        maxIfMerge(s_max_delivery_count) AS max_delivery_count,
        countIfMerge(s_positioned) AS positioned,
        uniqExactIfMerge(s_copies_delivered) AS copies_delivered,
        argMaxIfMerge(s_delivered_at) AS delivered_at,
        minIfMerge(s_delivered_ns) AS delivered_ns,
        minIfMerge(s_settled_ns) AS settled_ns
    FROM @pairs@
    GROUP BY producer, stream, seq, grp
),
marks AS @materialized@(
    SELECT
        producer, stream, grp, partition,
        minIfMerge(s_first) AS first_delivered,
        maxIfMerge(s_delivered_max) AS delivered_max,
        maxIfMerge(s_settled_max) AS settled_max
    FROM @marks@
    GROUP BY producer, stream, grp, partition
),
-- Per (stream, group): the first seq delivered (a group is expected from there on; none
-- delivered, no row passes `pairs`), and the highest seqs delivered and settled on any partition.
expected AS (
    SELECT producer, stream, grp, min(first_delivered) AS first_seq,
           max(delivered_max) AS delivered_any, max(settled_max) AS settled_any
    FROM marks
    GROUP BY producer, stream, grp
),
high_part AS (
    SELECT producer, stream, grp, assumeNotNull(partition) AS partition,
           delivered_max AS delivered_part, settled_max AS settled_part
    FROM marks WHERE partition IS NOT NULL
),
pairs AS (
    SELECT
        m.producer AS producer, m.stream AS stream, m.seq AS seq, e.grp AS grp,
        m.m_ok_acks AS ok_acks, m.m_deliveries AS deliveries, m.partition AS partition, m.last_end AS last_end,
        ifNull(t.delivered, 0) AS delivered, ifNull(t.settled_ok, 0) AS settled_ok,
        ifNull(t.acks, 0) AS acks, ifNull(t.settles, 0) AS settles,
        ifNull(t.positioned, 0) AS positioned, ifNull(t.copies_delivered, 0) AS copies_delivered,
        t.max_delivery_count AS max_delivery_count, t.delivered_at AS delivered_at,
        if(m.partition IS NOT NULL, hp.delivered_part, e.delivered_any) AS delivered_mark,
        if(m.partition IS NOT NULL, hp.settled_part, e.settled_any) AS settled_mark
    FROM messages AS m
    INNER JOIN expected AS e ON e.producer = m.producer AND e.stream = m.stream
    LEFT JOIN activity AS t ON t.producer = m.producer AND t.stream = m.stream AND t.seq = m.seq AND t.grp = e.grp
    LEFT JOIN high_part AS hp ON hp.producer = m.producer AND hp.stream = m.stream AND hp.grp = e.grp
                              AND hp.partition = m.partition
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
findings AS @materialized@(
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
)
