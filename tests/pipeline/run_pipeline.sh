#!/bin/bash
# `exosbi run` end to end on a small task: every stage's output, the observation
# file and the figures; a second run skips the finished stages.
source "$(dirname "$0")/lib.sh"
must 2 run "$FIX/lg5.yaml" -o "$WORK/run" -n 2000 --max-epochs 3 --sbc-samples 100 --samples 2000
for f in corpus.h5 model.h5 sbc.h5 posterior.h5 observation.txt; do present "$WORK/run/$f"; done
if /usr/bin/python3 -c "import h5py, matplotlib" 2>/dev/null; then
  for f in index.html training.png sbc_ranks.png sbc_coverage.png posterior_corner.png; do present "$WORK/run/$f"; done
fi
CHECKS=$((CHECKS + 1))
grep -q "exact posterior" "$WORK/last.err" || fail "run did not compare with the exact posterior"
must 2 run "$FIX/lg5.yaml" -o "$WORK/run" -n 2000 --max-epochs 3 --sbc-samples 100 --samples 2000
CHECKS=$((CHECKS + 1))
[ "$(grep -c "exists; kept" "$WORK/last.err")" -eq 2 ] || fail "the second run did not keep corpus and model"
finish
