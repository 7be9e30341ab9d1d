#!/bin/bash
# Data-parallel training keeps the weights bitwise identical on every rank after
# every step (--verify-sync checks with an Allreduce of the weights), and 2 and 4
# ranks reach the 1-rank validation loss within noise.
source "$(dirname "$0")/lib.sh"
must 2 simulate "$FIX/lg5.yaml" -o "$WORK/c.h5" --quiet
for np in 1 2 4; do
  must "$np" train "$FIX/lg5.yaml" "$WORK/c.h5" -o "$WORK/m$np.h5" --verify-sync --json --quiet
  cp "$WORK/last.out" "$WORK/m$np.json"
done
l1=$(json_field "$WORK/m1.json" best_val_loss)
for np in 2 4; do
  l=$(json_field "$WORK/m$np.json" best_val_loss)
  echo "validation loss: 1 rank $l1, $np ranks $l"
  CHECKS=$((CHECKS + 1))
  # 400 validation rows: the standard error of the mean loss is about 0.06 nats.
  /usr/bin/python3 -c "import sys; sys.exit(abs($l - $l1) > 0.1)" || fail "$np ranks: loss $l vs $l1"
done
finish
