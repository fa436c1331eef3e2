-- Per shard, per (message, group): what the group did with the message, as partial states.
SELECT
    producer, stream, seq, assumeNotNull(grp) AS grp,
    countIfState(stage = 2) AS s_delivered,
    countIfState(stage = 3 AND outcome IN (1, 2)) AS s_settled_ok,
    countIfState(stage = 3 AND outcome = 1) AS s_acks,
    countIfState(stage = 3) AS s_settles,
    maxIfState(delivery_count, stage = 2) AS s_max_delivery_count,
    countIfState(stage IN (2, 200) AND position IS NOT NULL) AS s_positioned,
    uniqExactIfState(position, stage IN (2, 200) AND position IS NOT NULL) AS s_copies_delivered,
    argMaxIfState(position, start_ns, stage = 2 AND position IS NOT NULL) AS s_delivered_at,
    minIfState(toNullable(start_ns), stage = 2 AND NOT ledger) AS s_delivered_ns,
    minIfState(toNullable(end_ns), stage = 3 AND NOT ledger) AS s_settled_ns
FROM rows
WHERE grp IS NOT NULL
GROUP BY producer, stream, seq, grp
