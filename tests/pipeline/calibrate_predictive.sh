#!/bin/bash
# The posterior-predictive report: identical on 1, 2 and 4 ranks; killed with
# SIGKILL halfway through and resumed from its per-case checkpoints, it equals
# the uninterrupted report; a checkpoint made with other settings is refused.
source "$(dirname "$0")/lib.sh"
must 2 simulate "$FIX/lg5.yaml" -o "$WORK/c.h5" --quiet
must 2 train "$FIX/lg5.yaml" "$WORK/c.h5" -o "$WORK/m.h5" --max-epochs 2 --quiet
opts=(--max-cases 120 --samples 100 --forward-samples 60 --level 0.8 --quiet)
for np in 1 2 4; do
  must "$np" predictive "$FIX/lg5.yaml" "$WORK/m.h5" "$WORK/c.h5" -o "$WORK/ppc$np.h5" "${opts[@]}" --json
done
for np in 2 4; do same_data "$WORK/ppc1.h5" "$WORK/ppc$np.h5"; done
CHECKS=$((CHECKS + 1))
/usr/bin/python3 - "$WORK/ppc1.h5" <<'PY' || fail "PPC.h5 layout"
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    assert f.attrs["n_cases"] == 120 and f.attrs["n_forward_samples"] == 60
    for k in ("observed", "mean", "std", "lower", "upper"):
        assert f[f"datasets/x/{k}"].shape == (120, 10), k
    lo, hi, obs = f["datasets/x/lower"][()], f["datasets/x/upper"][()], f["datasets/x/observed"][()]
    cov = ((obs >= lo) & (obs <= hi)).mean(axis=1)
    assert np.allclose(cov, f["per_case/coverage"][:, 0])
    assert abs(f["summary/coverage"][0] - cov.mean()) < 1e-12
    assert (f["n_valid"][()] == 60).all()
    for k in ("mae", "mae_sigma", "median_width_over_sigma", "crps"):
        assert np.isfinite(f[f"summary/{k}"][()]).all(), k
PY

# killed after 25 new cases on one rank, then resumed
EXOSBI_TEST_KILL_AFTER_CASES=25 run 2 predictive "$FIX/lg5.yaml" "$WORK/m.h5" "$WORK/c.h5" -o "$WORK/resumed.h5" \
  "${opts[@]}" --checkpoint-dir "$WORK/ckpt"
status=$?
CHECKS=$((CHECKS + 1))
[ "$status" -ne 0 ] || fail "the killed run exited 0"
absent "$WORK/resumed.h5"
n_ckpt=$(ls "$WORK/ckpt" | grep -c '^case_.*\.h5$')
CHECKS=$((CHECKS + 1))
[ "$n_ckpt" -ge 25 ] && [ "$n_ckpt" -lt 120 ] || fail "$n_ckpt checkpoints after the kill"
must 2 predictive "$FIX/lg5.yaml" "$WORK/m.h5" "$WORK/c.h5" -o "$WORK/resumed.h5" "${opts[@]}" \
  --checkpoint-dir "$WORK/ckpt" --json
CHECKS=$((CHECKS + 1))
[ "$(json_field "$WORK/last.out" resumed)" -ge 25 ] || fail "nothing was resumed: $(cat "$WORK/last.out")"
same_data "$WORK/ppc1.h5" "$WORK/resumed.h5"

# other settings with the same checkpoints: exit 3
expect 3 "checkpoint made with other settings" 2 predictive "$FIX/lg5.yaml" "$WORK/m.h5" "$WORK/c.h5" \
  -o "$WORK/x.h5" --max-cases 120 --samples 100 --forward-samples 50 --checkpoint-dir "$WORK/ckpt"
absent "$WORK/x.h5"
expect 2 "forward-samples" 2 predictive "$FIX/lg5.yaml" "$WORK/m.h5" "$WORK/c.h5" -o "$WORK/x.h5" \
  --samples 10 --forward-samples 20
finish
