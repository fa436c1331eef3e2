-- Per shard, per (stream, group, partition): the first seq delivered and the highest seqs
-- delivered and settled, as partial states.
SELECT
    producer, stream, assumeNotNull(grp) AS grp, partition,
    minIfState(toNullable(seq), stage = 2) AS s_first,
    maxIfState(toNullable(seq), stage = 2) AS s_delivered_max,
    maxIfState(toNullable(seq), stage = 3) AS s_settled_max
FROM rows
WHERE grp IS NOT NULL AND stage IN (2, 3)
GROUP BY producer, stream, grp, partition
