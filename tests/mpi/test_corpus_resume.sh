#!/bin/bash
# A run killed (SIGKILL) after a few batches resumes, at another number of
# ranks, into the corpus an uninterrupted run writes.
source "$(dirname "$0")/test_corpus_common.sh"

expect 0 1 simulate "$TASK" -o "$WORK/ref.h5" --quiet
OUT=$WORK/killed.h5

# Killed after 4 of the 12 batches, on 2 ranks.
EXOSBI_TEST_KILL_AFTER_BATCHES=4 run 2 simulate "$TASK" -o "$OUT" --quiet
[ $? -ne 0 ] || fail "the killed run exited with status 0"
[ -e "$OUT.partial" ] || fail "the killed run left no $OUT.partial"
absent "$OUT"
[ "$(attr "$OUT.partial" batches_done)" = 4 ] || fail "batches_done is '$(attr "$OUT.partial" batches_done)' after the kill, expected 4"
[ "$(attr "$OUT.partial" complete)" = 0 ] || fail "the partial file claims to be complete"

# Without --resume the partial file is refused, and kept.
expect 2 2 simulate "$TASK" -o "$OUT" --quiet && stderr_has "--resume"
[ -e "$OUT.partial" ] || fail "$OUT.partial was removed by a refused run"
absent "$OUT"

# Resumed on 4 ranks and killed again 3 batches later, then finished on 1 rank.
EXOSBI_TEST_KILL_AFTER_BATCHES=3 run 4 simulate "$TASK" -o "$OUT" --resume --quiet
[ $? -ne 0 ] || fail "the second killed run exited with status 0"
[ "$(attr "$OUT.partial" batches_done)" = 7 ] || fail "batches_done is '$(attr "$OUT.partial" batches_done)' after the second kill, expected 7"
expect 0 1 simulate "$TASK" -o "$OUT" --resume --json
absent "$OUT.partial"
grep -qF '"n_simulations": 3000' "$WORK/last.out" || fail "resumed --json output: $(cat "$WORK/last.out")"
same_corpus "$WORK/ref.h5" "$OUT"

# --resume of a complete corpus is accepted as it is (a resubmitted job).
expect 0 2 simulate "$TASK" -o "$OUT" --resume
stderr_has "already complete"
same_corpus "$WORK/ref.h5" "$OUT"
finish
