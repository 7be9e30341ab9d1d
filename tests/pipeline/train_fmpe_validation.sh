#!/bin/bash
# fmpe's loss depends on the time and base point it draws for each row, so
# its validation must draw the same ones every epoch: with weights that do
# not move (a learning rate of 1e-30), every epoch reports the same
# validation loss, and the first epoch stays the best.  Fresh draws made it
# vary by about 0.05 from epoch to epoch, more than training improves it,
# so the kept "best" epoch, the plateau decay and early stopping followed
# that noise.
source "$(dirname "$0")/lib.sh"
must 2 simulate "$FIX/lg5.yaml" -o "$WORK/c.h5" -n 4000 --quiet
must 2 train "$FIX/lg5.yaml" "$WORK/c.h5" -o "$WORK/m.h5" --estimator fmpe --max-epochs 4 --min-epochs 4 \
  --learning-rate 1e-30 --lr-schedule constant --seed 3
cat "$WORK/last.out" "$WORK/last.err" | awk '/^epoch / {print $6}' >"$WORK/val.txt"
echo "validation losses: $(tr '\n' ' ' <"$WORK/val.txt")"
CHECKS=$((CHECKS + 1))
[ "$(wc -l <"$WORK/val.txt")" -eq 4 ] || fail "expected 4 epoch lines, got $(wc -l <"$WORK/val.txt")"
CHECKS=$((CHECKS + 1))
[ "$(sort -u "$WORK/val.txt" | wc -l)" -eq 1 ] || fail "validation loss changed with unchanged weights"
CHECKS=$((CHECKS + 1))
grep -q "best validation loss .* at epoch 1)" "$WORK/last.out" "$WORK/last.err" ||
  fail "best epoch is not the first: $(grep -h 'best validation' "$WORK/last.out" "$WORK/last.err")"
finish
