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
CHECKS=$((CHECKS + 1))
/usr/bin/python3 - "$WORK/m.h5" <<'PY' || fail "fmpe validation loss moved with unchanged weights"
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    v = f["history/val_loss"][()]
    best = int(f.attrs["best_epoch"])  # 0-based: the first epoch is 0
print("validation losses:", list(v), "best epoch index", best)
assert len(v) == 4, v
assert all(x == v[0] for x in v), v
assert best == 0, best
PY
finish
