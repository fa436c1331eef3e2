-- Every span of the table in the scan's bounds, classified as the file readers classify it
-- (analyzer/reader/src/extract.rs): `problem` is why a numbered or ledger span cannot be used
-- ('' when it can), `numbered` whether it is a stage span of a numbered message.
-- Every name (attribute keys, stages, outcomes) comes in as a query parameter from
-- mqtrace-vocab; nothing a user gives is ever part of this text.
spans AS (
    SELECT
        SpanAttributes AS a,
        TraceId AS trace_id,
        SpanId AS span_id,
        SpanName AS span_name,
        toUnixTimestamp64Nano(Timestamp) AS start_ns,
        start_ns + toInt64(Duration) AS end_ns,
        mapContains(a, {a_stage:String}) AS staged,
        a[{a_stage:String}] AS stage_text,
        staged OR arrayExists(k -> startsWith(k, {messaging_prefix:String}), mapKeys(a)) AS messaging,
        a[{a_producer:String}] AS producer,
        a[{a_stream:String}] AS stream,
        mapContains(a, {a_producer:String}) AND mapContains(a, {a_stream:String}) AS named,
        toInt64OrNull(a[{a_seq:String}]) AS seq_value,
        stage_text IN ({s_produce:String}, {s_store_ack:String}, {s_deliver:String}, {s_consume_ack:String}) AS is_stage,
        stage_text = {s_ledger:String} AS is_ledger,
        -- A ledger's seqs as (first, last, well-formed) ranges.
        arrayMap(r -> (
                toUInt64OrZero(splitByChar('-', r)[1]),
                toUInt64OrZero(splitByChar('-', r)[-1]),
                match(r, '^[1-9][0-9]*(-[1-9][0-9]*)?$')),
            if(a[{a_seqs:String}] = '', [], splitByChar(',', a[{a_seqs:String}]))) AS ranges,
        toUInt64(arraySum(r -> r.2 + 1 - r.1, ranges)) AS ledger_count,
        a[{a_ledger_of:String}] AS ledger_of,
        multiIf(
            NOT staged, '',
            NOT (is_stage OR is_ledger), concat({a_stage:String}, ' is not a stage this version knows: ', substring(stage_text, 1, 64)),
            is_stage AND mapContains(a, {a_attempt:String}) AND toInt64OrNull(a[{a_attempt:String}]) IS NULL,
                concat({a_attempt:String}, ' must be an int'),
            is_stage AND mapContains(a, {a_delivery_count:String}) AND toInt64OrNull(a[{a_delivery_count:String}]) IS NULL,
                concat({a_delivery_count:String}, ' must be an int'),
            is_stage AND named AND mapContains(a, {a_seq:String}) AND seq_value IS NULL,
                concat({a_seq:String}, ' must be a 64-bit int'),
            is_stage AND named AND seq_value < 1, concat({a_seq:String}, ' must be ≥ 1'),
            is_stage AND named AND seq_value > {max_seq:Int64}, concat({a_seq:String}, ' is over the largest seq'),
            (is_stage AND named AND seq_value IS NOT NULL OR is_ledger) AND (position(producer, '\0') > 0 OR position(stream, '\0') > 0),
                'producer id and stream must not contain NUL characters',
            is_ledger AND ledger_of NOT IN ({s_store_ack:String}, {s_deliver:String}, {s_consume_ack:String}),
                concat({a_ledger_of:String}, ' must be store_ack, deliver or consume_ack'),
            is_ledger AND NOT (named AND mapContains(a, {a_seqs:String})),
                concat('a ledger span needs ', {a_producer:String}, ', ', {a_stream:String}, ' and ', {a_seqs:String}),
            is_ledger AND NOT (arrayAll(r -> r.3 AND r.1 <= r.2, ranges)
                AND arrayAll((x, y) -> x.1 > y.2, arrayPopFront(ranges), arrayPopBack(ranges))),
                concat({a_seqs:String}, ' is not sorted, disjoint ranges of seqs'),
            is_ledger AND mapContains(a, {a_ledger_count:String}) AND ifNull(toUInt64OrNull(a[{a_ledger_count:String}]) != ledger_count, true),
                concat({a_ledger_count:String}, ' does not count the seqs of ', {a_seqs:String}),
            is_ledger AND ledger_count > {max_ledger_seqs:UInt64}, 'a ledger of more seqs than the analyzer reads',
            is_ledger AND length(ranges) > 0 AND ranges[-1].2 > toUInt64({max_seq:Int64}), concat({a_seq:String}, ' is over the largest seq'),
            '') AS problem,
        problem = '' AND is_stage AND named AND seq_value IS NOT NULL AS numbered,
        -- A messaging span without numbering, judged by the conventions alone (SPEC §4b).
        messaging AND problem = '' AND NOT numbered AND NOT is_ledger AS semconv,
        ParentSpanId AS parent_id,
        SpanKind AS span_kind,
        StatusCode AS status_code,
        ServiceName AS service,
        `Links.TraceId` AS link_trace_ids,
        `Links.SpanId` AS link_span_ids,
        -- `--stream`: only these streams' spans are judged (all when empty).
        empty({streams:Array(String)}) OR has({streams:Array(String)}, stream) AS selected
    FROM {db:Identifier}.{table:Identifier}
    WHERE Timestamp >= fromUnixTimestamp64Nano({since:Int64})
      AND Timestamp <= fromUnixTimestamp64Nano({until:Int64})
)
