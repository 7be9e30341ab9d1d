#!/bin/bash
# The SBC report and the posterior samples are identical on 1, 2 and 4 ranks.
source "$(dirname "$0")/lib.sh"
must 2 simulate "$FIX/lg5.yaml" -o "$WORK/c.h5" --quiet
must 2 train "$FIX/lg5.yaml" "$WORK/c.h5" -o "$WORK/m.h5" --max-epochs 3 --quiet
for np in 1 2 4; do
  must "$np" sbc "$WORK/m.h5" "$WORK/c.h5" -o "$WORK/sbc$np.h5" --samples 200 --json --quiet
  printf '0.1\n0.2\n0.3\n0.4\n0.5\n0.6\n0.7\n0.8\n0.9\n1.0\n' >"$WORK/obs.txt"
  must "$np" infer "$FIX/lg5.yaml" "$WORK/m.h5" "$WORK/obs.txt" -o "$WORK/p$np.h5" --samples 3000 --quiet
done
for np in 2 4; do
  same_data "$WORK/sbc1.h5" "$WORK/sbc$np.h5" /ranks /truths /posterior_means /sim_index /rank_histogram \
    /coverage/empirical /coverage/per_parameter /mean_rank /normalized_mean_rank_error /tarp/ecp /tarp/f
  same_data "$WORK/p1.h5" "$WORK/p$np.h5" /samples /log_prob /summary/median
done
finish
