#!/bin/bash
# The linear-Gaussian task inputs/linear_gaussian.yaml (10 parameters, 20,000 simulations):
# over 100 test observations the amortized posterior means are within 0.1 exact
# posterior sigma and the sigmas within 10% (averaged over cases and parameters);
# SBC coverage over 1000 test cases within 0.03 of 0.5, 0.8 and 0.95.
source "$(dirname "$0")/lib.sh"
ACC=${1:?usage: linear_gaussian_accuracy.sh PATH/TO/lg_accuracy}
T=$SRC/inputs/linear_gaussian.yaml
must 2 simulate "$T" -o "$WORK/c.h5" --quiet
must 2 train "$T" "$WORK/c.h5" -o "$WORK/m.h5" --quiet --json
cat "$WORK/last.out"
CHECKS=$((CHECKS + 1))
"$ACC" "$T" "$WORK/m.h5" "$WORK/c.h5" 100 0.1 0.1 || fail "posterior accuracy against the exact posterior"
must 2 sbc "$WORK/m.h5" "$WORK/c.h5" -o "$WORK/sbc.h5" --samples 1000 --json --quiet
cat "$WORK/last.out"
CHECKS=$((CHECKS + 1))
/usr/bin/python3 - "$WORK/last.out" <<'PY' || fail "SBC coverage outside 0.03 of nominal"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["n_cases"] >= 500, r
for level, c in r["coverage"].items():
    print(f"coverage {level}: {c:.4f}")
    assert abs(c - float(level)) <= 0.03, (level, c)
PY
finish
