#!/bin/bash
# A transmission task whose line table is malformed: `exosbi simulate` exits
# with status 4 on 1, 2 and 4 ranks (rank 0 reads the table, the others
# follow; none hangs), names the table once, and writes nothing.
source "$(dirname "$0")/test_corpus_common.sh"

printf 'not an HDF5 file\n' >"$WORK/H2O.xsec.petitRADTRANS.h5"
cat >"$WORK/task.yaml" <<'YAML'
name: malformed-table
version: 1.0.0
parameters:
  - {name: T_iso, prior: uniform, low: 800, high: 1200}
forward_model:
  family: transmission
  settings:
    pressure: {n_layers: 20}
    species: [{name: H2O, opacity: H2O.xsec.petitRADTRANS.h5}]
    model_resolution: 100
    fixed: {R_pl: 1.2, R_star: 1.0, log_g: 3.0, log_X_H2O: -3.0}
datasets:
  - {name: s, modality: spectrum, coordinates: [1.0, 1.4, 2.0], uncertainty: 1e-4}
simulation:
  n_simulations: 8
  batch_size: 4
  seed: 1
  splits: {train: 0.5, validation: 0.25, test: 0.25}
  noise: observational
YAML
for np in 1 2 4; do
  if expect 4 "$np" simulate "$WORK/task.yaml" -o "$WORK/c$np.h5" --quiet; then
    stderr_has "species[0] (H2O)"
    stderr_has "H2O.xsec.petitRADTRANS.h5"
    n=$(grep -c "H2O.xsec.petitRADTRANS.h5" "$WORK/last.err")
    [ "$n" -eq 1 ] || fail "the table is named $n times on $np ranks, expected once"
  fi
  absent "$WORK/c$np.h5" "$WORK/c$np.h5.partial"
done
finish
