#!/bin/bash
# The same task simulated on 1, 2 and 4 ranks gives identical corpora.
source "$(dirname "$0")/test_corpus_common.sh"

for np in 1 2 4; do
  expect 0 "$np" simulate "$TASK" -o "$WORK/c$np.h5" --json --quiet
  absent "$WORK/c$np.h5.partial"
  [ "$(attr "$WORK/c$np.h5" complete)" = 1 ] || fail "c$np.h5 is not marked complete"
  [ "$(attr "$WORK/c$np.h5" batches_done)" = 12 ] || fail "c$np.h5 has batches_done $(attr "$WORK/c$np.h5" batches_done), expected 12"
  [ "$(wc -l <"$WORK/last.out")" -eq 1 ] || fail "--json printed $(wc -l <"$WORK/last.out") lines on $np ranks"
  for key in '"n_simulations": 3000' '"wall_s"' '"simulations_per_s"' '"write_mb_per_s"' '"invalid_redrawn": 0' '"fingerprint": "'; do
    grep -qF -- "$key" "$WORK/last.out" || fail "--json output lacks $key: $(cat "$WORK/last.out")"
  done
done
same_corpus "$WORK/c1.h5" "$WORK/c2.h5"
same_corpus "$WORK/c1.h5" "$WORK/c4.h5"

# The comparison itself can fail: another seed gives another corpus.
sed 's/seed: 11/seed: 12/' "$TASK" >"$WORK/seed12.yaml"
expect 0 2 simulate "$WORK/seed12.yaml" -o "$WORK/seed12.h5" --quiet
out=$(h5diff -r "$WORK/c1.h5" "$WORK/seed12.h5" /train /train 2>&1)
[ $? -eq 1 ] || fail "h5diff did not see the difference between seeds 11 and 12"

# The split sizes of 0.8/0.1/0.1 of 3000.
for s in train:2400 validation:300 test:300; do
  dims=$(h5dump -H -d "/${s%%:*}/theta" "$WORK/c2.h5" | grep -o 'DATASPACE  SIMPLE { ( [0-9]*, [0-9]* )' | grep -o '( [0-9]*' | tr -d '( ')
  [ "$dims" = "${s##*:}" ] || fail "/${s%%:*}/theta has $dims rows, expected ${s##*:}"
done
finish
