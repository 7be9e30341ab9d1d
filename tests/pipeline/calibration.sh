#!/bin/bash
# Calibration of one flow family on one task with a known answer, through the
# command line: simulate, train, then SBC over held-out cases; the empirical
# coverage of the central 50%, 80% and 95% credible intervals (averaged over
# the parameters, read from the report's /coverage/empirical) must lie within
# 0.03 of what a calibrated posterior gives (the nominal level, corrected
# for the finite number of draws; see below).
#   linear_gaussian: inputs/linear_gaussian.yaml (10 parameters, 20 outputs),
#                    20,000 simulations, SBC over its 1000 test cases (500
#                    for naf): the averaged coverage's noise is below 0.01;
#   two_moons:       the two-moons plugin task (2 parameters, bimodal
#                    posterior), 24,000 simulations of which 3000 are held out
#                    (1500 used for naf, 600 for fmpe): noise about 0.01 at
#                    level 0.5 (0.02 for fmpe).
# Usage: calibration.sh FAMILY linear_gaussian|two_moons
source "$(dirname "$0")/lib.sh"
FAM=${1:?usage: calibration.sh FAMILY linear_gaussian|two_moons}
TASK_NAME=${2:?usage: calibration.sh FAMILY linear_gaussian|two_moons}
BIN=${EXOSBI_BINARY_DIR:?EXOSBI_BINARY_DIR is not set}

# Per family and task: EPOCHS of the cosine schedule (the batch size and
# learning rate are the task's), posterior SAMPLES per case, held-out CASES
# (0: the whole test split) and EXTRA training options; the shortest runs
# found to calibrate.  naf (bisection inverse) and fmpe (ODE) draw samples
# slowly, so they get fewer.  The two-moons crescents are thin and curved:
# the affine families need more layers and width than their defaults.
EXTRA=()
CASES=0
SBC_PETSC=
case "$TASK_NAME" in
linear_gaussian)
  T=$SRC/inputs/linear_gaussian.yaml
  case "$FAM" in
  naf) EPOCHS=20 SAMPLES=100 CASES=500 ;;
  fmpe) EPOCHS=120 SAMPLES=200 ;;
  *) EPOCHS=30 SAMPLES=1000 ;;
  esac
  ;;
two_moons)
  # The build's copy of the plugin (inputs/plugins/two_moons.so may come from
  # another build tree), with held-out cases counted out explicitly.
  T=$WORK/two_moons.yaml
  sed -e "s#plugins/two_moons.so#$BIN/tests/forward_inputs/plugins/two_moons.so#" \
      -e "s#n_simulations: .*#n_simulations: 24000#" \
      -e "s#splits: .*#splits: {train: 20000, validation: 1000, test: 3000}#" \
      "$BIN/tests/forward_inputs/two_moons.yaml" >"$T"
  case "$FAM" in
  nsf) EPOCHS=30 SAMPLES=1000 ;;
  maf) EPOCHS=100 SAMPLES=1000 EXTRA=(--n-transforms 10 --hidden 128) ;;
  affine) EPOCHS=100 SAMPLES=1000 EXTRA=(--n-transforms 10 --hidden 128) ;;
  naf) EPOCHS=50 SAMPLES=100 CASES=1500 ;;
  # Flow matching resolves the thin crescents slowly (its regression
  # targets are noisy) and needs the Fourier features of the time (the
  # default 4 frequencies): with t alone these settings gave coverage
  # 0.470 / 0.810 / 0.971 over 1000 cases (the 95% level 0.0305 over).
  # The draws integrate the ODE to a tolerance of 1e-4 (three times fewer
  # steps than the default 1e-6; the draws move by far less than the
  # crescents' width).
  fmpe) EPOCHS=600 SAMPLES=200 CASES=600 EXTRA=(--hidden 128 --hidden-layers 3 --learning-rate 3e-3)
    SBC_PETSC="-ts_rtol 1e-4 -ts_atol 1e-4" ;;
  esac
  ;;
*)
  echo "unknown task $TASK_NAME" >&2
  exit 2
  ;;
esac
MAX_CASES=$CASES

# CAL_EPOCHS, CAL_SAMPLES, CAL_CASES and CAL_TRAIN_ARGS override the settings
# above (for tuning by hand).
EPOCHS=${CAL_EPOCHS:-$EPOCHS}
SAMPLES=${CAL_SAMPLES:-$SAMPLES}
MAX_CASES=${CAL_CASES:-$MAX_CASES}
read -r -a EXTRA <<<"${CAL_TRAIN_ARGS:-${EXTRA[*]:-}}"
t0=$SECONDS
must 1 simulate "$T" -o "$WORK/c.h5" --quiet
must 1 train "$T" "$WORK/c.h5" -o "$WORK/m.h5" --estimator "$FAM" --max-epochs "$EPOCHS" --min-epochs "$EPOCHS" \
  --lr-schedule cosine --seed 1 "${EXTRA[@]}" --quiet --json
echo "train: $(cat "$WORK/last.out")"
[ -n "$SBC_PETSC" ] && export PETSC_OPTIONS="$SBC_PETSC"
must 1 sbc "$WORK/m.h5" "$WORK/c.h5" -o "$WORK/sbc.h5" --samples "$SAMPLES" --max-cases "$MAX_CASES" --seed 2 --quiet
unset PETSC_OPTIONS
h5dump -y -w 0 -o "$WORK/cov.txt" -d /coverage/empirical "$WORK/sbc.h5" >/dev/null
h5dump -y -w 0 -o "$WORK/levels.txt" -d /coverage/levels "$WORK/sbc.h5" >/dev/null
h5dump -y -w 0 -o "$WORK/per.txt" -d /coverage/per_parameter "$WORK/sbc.h5" >/dev/null
CASES=$(h5dump -a /n_cases "$WORK/sbc.h5" | awk '/\(0\)/ {print $2}')
echo "$FAM on $TASK_NAME: $CASES SBC cases, coverage per level and parameter: $(tr -s ' \n' ' ' <"$WORK/per.txt")"
CHECKS=$((CHECKS + 1))
[ "${CASES:-0}" -ge 500 ] || fail "only ${CASES:-0} SBC cases"
paste -d ' ' <(tr -s ', \n' '\n' <"$WORK/levels.txt" | grep .) <(tr -s ', \n' '\n' <"$WORK/cov.txt" | grep .) \
  >"$WORK/pairs.txt"
CHECKS=$((CHECKS + 1))
# A perfectly calibrated posterior covers the truth with probability
# level (n - 1) / (n + 1) when the interval ends are the interpolated
# quantiles of n draws, as in the report (0.9405 for 0.95 at n = 200), so
# that, not the level itself, is what the coverage is held to.
awk -v fam="$FAM" -v task="$TASK_NAME" -v n="$SAMPLES" '
  { want = $1 * (n - 1) / (n + 1); d = $2 - want; bad += (d > 0.03 || d < -0.03); k++
    printf "%s on %s: coverage %.2f -> %.4f (expected %.4f with %d draws: %+.4f)\n", fam, task, $1, $2, want, n, d }
  END { exit (k != 3 || bad) }' "$WORK/pairs.txt" || fail "$FAM on $TASK_NAME: SBC coverage outside 0.03 of nominal"
echo "$FAM on $TASK_NAME: $((SECONDS - t0)) s"
finish
