#!/bin/bash
# The same steps as the Slurm scripts, with mpirun on one machine.
#   NP=2 N_SHARDS=2 jobs/local.sh
set -euo pipefail
source jobs/inputs.env
NP=${NP:-2}
run() { scripts/mpirun -n "$NP" "$@"; }
for ((i = 0; i < N_SHARDS; i++)); do
  run "$EXOSBI" simulate "$TASK" -o "$OUT/shards/corpus_$i.h5" --shard "$i/$N_SHARDS" --resume
done
run "$EXOSBI" merge -o "$OUT/corpus.h5" "$OUT"/shards/corpus_*.h5
run "$EXOSBI" train "$TASK" "$OUT/corpus.h5" -o "$OUT/model.h5" --resume --json
run "$EXOSBI" sbc "$OUT/model.h5" "$OUT/corpus.h5" -o "$OUT/sbc.h5" --json
