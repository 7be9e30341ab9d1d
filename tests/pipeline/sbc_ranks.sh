#!/bin/bash
# The SBC report and the posterior samples are identical on 1, 2 and 4 ranks.
source "$(dirname "$0")/lib.sh"
must 2 simulate "$FIX/lg5.yaml" -o "$WORK/c.h5" --quiet
must 2 train "$FIX/lg5.yaml" "$WORK/c.h5" -o "$WORK/m.h5" --max-epochs 3 --quiet
for np in 1 2 4; do
  must "$np" sbc "$WORK/m.h5" "$WORK/c.h5" -o "$WORK/sbc$np.h5" --samples 200 --json --quiet
  cp "$WORK/last.out" "$WORK/sbc$np.json"
  printf '0.1\n0.2\n0.3\n0.4\n0.5\n0.6\n0.7\n0.8\n0.9\n1.0\n' >"$WORK/obs.txt"
  must "$np" infer "$FIX/lg5.yaml" "$WORK/m.h5" "$WORK/obs.txt" -o "$WORK/p$np.h5" --samples 3000 --quiet
done
# The report states what a calibrated posterior covers with 200 draws.
CHECKS=$((CHECKS + 1))
/usr/bin/python3 - "$WORK/sbc1.h5" "$WORK/sbc1.json" <<'PY' || fail "/coverage/expected"
import json, sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    lv, ex = f["coverage/levels"][()], f["coverage/expected"][()]
js = json.load(open(sys.argv[2]))["coverage_expected"]
for a, e in zip(lv, ex):
    assert abs(e - a * 199 / 201) < 1e-15, (a, e)
    assert abs(js[f"{a:g}"] - e) < 1e-6, (js, a, e)
PY
for np in 2 4; do
  same_data "$WORK/sbc1.h5" "$WORK/sbc$np.h5" /ranks /truths /posterior_means /sim_index /rank_histogram \
    /coverage/empirical /coverage/expected /coverage/per_parameter /mean_rank /normalized_mean_rank_error /tarp/ecp /tarp/f
  same_data "$WORK/p1.h5" "$WORK/p$np.h5" /samples /log_prob /summary/median
done
finish
