#!/bin/bash
# Training killed with SIGKILL after an epoch and resumed reaches the same final
# weights as an uninterrupted run on the same number of ranks; the kill leaves no
# model file, only the checkpoint.
source "$(dirname "$0")/lib.sh"
NP=${1:-2}
shift || true
# Further arguments are extra training options (a schedule, noise augmentation).
must "$NP" simulate "$FIX/lg5.yaml" -o "$WORK/c.h5" --quiet
opts=(--max-epochs 7 --lr-decay-patience 1 --quiet "$@")
must "$NP" train "$FIX/lg5.yaml" "$WORK/c.h5" -o "$WORK/full.h5" "${opts[@]}"
EXOSBI_TEST_KILL_AFTER_EPOCHS=3 run "$NP" train "$FIX/lg5.yaml" "$WORK/c.h5" -o "$WORK/resumed.h5" "${opts[@]}"
status=$?
CHECKS=$((CHECKS + 1))
[ "$status" -ne 0 ] || fail "the killed run exited 0"
absent "$WORK/resumed.h5"
present "$WORK/resumed.h5.ckpt"
must "$NP" train "$FIX/lg5.yaml" "$WORK/c.h5" -o "$WORK/resumed.h5" "${opts[@]}" --resume
present "$WORK/resumed.h5"
absent "$WORK/resumed.h5.ckpt"
same_data "$WORK/full.h5" "$WORK/resumed.h5" /weights /history/val_loss /history/train_loss /history/learning_rate \
  /history/inverse_closure
finish
