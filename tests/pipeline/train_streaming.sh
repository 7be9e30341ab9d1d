#!/bin/bash
# A training split larger than the read cache streams from the corpus in
# groups of row blocks, keeps the ranks in sync, and learns as well as the
# in-memory run.
source "$(dirname "$0")/lib.sh"
must 2 simulate "$FIX/lg5.yaml" -o "$WORK/c.h5" -n 40000 --quiet
must 2 train "$FIX/lg5.yaml" "$WORK/c.h5" -o "$WORK/mem.h5" --max-epochs 4 --json
cp "$WORK/last.out" "$WORK/mem.json"
CHECKS=$((CHECKS + 1))
grep -q "streaming" "$WORK/last.err" && fail "the in-memory run streamed"
must 2 train "$FIX/lg5.yaml" "$WORK/c.h5" -o "$WORK/stream.h5" --max-epochs 4 --json --cache-mb 1 --verify-sync
cp "$WORK/last.out" "$WORK/stream.json"
CHECKS=$((CHECKS + 1))
grep -q "in 2 groups\|in 3 groups" "$WORK/last.err" || fail "the 1 MB cache did not stream: $(grep -i stream "$WORK/last.err")"
a=$(json_field "$WORK/mem.json" best_val_loss)
b=$(json_field "$WORK/stream.json" best_val_loss)
echo "validation loss: in memory $a, streamed $b"
CHECKS=$((CHECKS + 1))
/usr/bin/python3 -c "import sys; sys.exit(abs($a - $b) > 0.1)" || fail "streamed loss $b vs in-memory $a"
finish
