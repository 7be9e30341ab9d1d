#!/bin/bash
# Three shards written on different numbers of ranks merge, in any order,
# into the corpus of one run; incomplete sets of shards are refused.
source "$(dirname "$0")/test_corpus_common.sh"

expect 0 2 simulate "$TASK" -o "$WORK/ref.h5" --quiet
expect 0 1 simulate "$TASK" -o "$WORK/s0.h5" --shard 0/3 --quiet
expect 0 2 simulate "$TASK" -o "$WORK/s1.h5" --shard 1/3 --quiet
expect 0 4 simulate "$TASK" -o "$WORK/s2.h5" --shard 2/3 --resume --quiet
[ "$(attr "$WORK/s1.h5" index_begin)" = 1000 ] || fail "shard 1/3 begins at $(attr "$WORK/s1.h5" index_begin)"
[ "$(attr "$WORK/s1.h5" index_end)" = 2000 ] || fail "shard 1/3 ends at $(attr "$WORK/s1.h5" index_end)"
[ "$(attr "$WORK/s2.h5" shard_count)" = 3 ] || fail "shard 2/3 has shard_count $(attr "$WORK/s2.h5" shard_count)"
h5dump -H "$WORK/s0.h5" | grep -q '/normalization\|GROUP "normalization"' && fail "a shard has normalisation statistics"

expect 0 2 merge -o "$WORK/merged.h5" "$WORK/s2.h5" "$WORK/s0.h5" "$WORK/s1.h5"
absent "$WORK/merged.h5.partial"
same_corpus "$WORK/ref.h5" "$WORK/merged.h5"
[ "$(attr "$WORK/merged.h5" shard_count)" = 0 ] || fail "the merged corpus is still marked as a shard"
[ "$(attr "$WORK/merged.h5" complete)" = 1 ] || fail "the merged corpus is not complete"

# A missing shard, a repeated one, a whole corpus among shards.
expect 2 1 merge -o "$WORK/bad1.h5" "$WORK/s0.h5" "$WORK/s2.h5" && stderr_has "shard 1/3"
expect 2 2 merge -o "$WORK/bad2.h5" "$WORK/s0.h5" "$WORK/s1.h5" "$WORK/s1.h5" "$WORK/s2.h5" && stderr_has "$WORK/s1.h5"
expect 2 1 merge -o "$WORK/bad3.h5" "$WORK/s0.h5" "$WORK/ref.h5" && stderr_has "$WORK/ref.h5"
# Shards of another task.
sed 's/scale: 1.0/scale: 2.0/' "$TASK" >"$WORK/other.yaml"
expect 0 1 simulate "$WORK/other.yaml" -o "$WORK/o1.h5" --shard 1/3 --quiet
expect 3 2 merge -o "$WORK/bad4.h5" "$WORK/s0.h5" "$WORK/o1.h5" "$WORK/s2.h5" && stderr_has "$WORK/o1.h5"
absent "$WORK/bad1.h5" "$WORK/bad2.h5" "$WORK/bad3.h5" "$WORK/bad4.h5"
# The output exists: --force is needed.
expect 2 1 merge -o "$WORK/merged.h5" "$WORK/s0.h5" "$WORK/s1.h5" "$WORK/s2.h5" && stderr_has "--force"
expect 0 1 merge -o "$WORK/merged.h5" --force "$WORK/s0.h5" "$WORK/s1.h5" "$WORK/s2.h5"
same_corpus "$WORK/ref.h5" "$WORK/merged.h5"
finish
