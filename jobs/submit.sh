#!/bin/bash
# Submit the corpus array, then merge, train and SBC, each after the previous succeeded.
set -euo pipefail
source jobs/inputs.env
a=$(sbatch --parsable --array=0-$((N_SHARDS - 1)) jobs/corpus_array.slurm)
m=$(sbatch --parsable --dependency=afterok:$a jobs/merge.slurm)
t=$(sbatch --parsable --dependency=afterok:$m jobs/train.slurm)
s=$(sbatch --parsable --dependency=afterok:$t jobs/sbc.slurm)
echo "submitted: corpus $a, merge $m, train $t, sbc $s"
