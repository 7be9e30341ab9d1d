# Shared by the corpus CLI tests: sourced, never run by itself.
#   test_corpus_*.sh MPIEXEC WORKDIR
# EXOSBI_EXE (the exosbi binary) and EXOSBI_SOURCE_DIR come from ctest.
set -u
MPIEXEC=${1:?usage: $0 MPIEXEC WORKDIR}
WORK=${2:?usage: $0 MPIEXEC WORKDIR}
EXE=${EXOSBI_EXE:?EXOSBI_EXE is not set}
SRC=${EXOSBI_SOURCE_DIR:?EXOSBI_SOURCE_DIR is not set}
TASK=$SRC/tests/data/corpus/lg_small.yaml
FAILURES=0
# Open MPI waits a second before it kills the rest of a job whose rank exited
# with an error; these tests provoke many errors on purpose.
export OMPI_MCA_odls_base_sigkill_timeout=${OMPI_MCA_odls_base_sigkill_timeout:-0}
rm -rf "$WORK" && mkdir -p "$WORK" || exit 1

fail() {
  echo "FAIL: $*" >&2
  FAILURES=$((FAILURES + 1))
}

# run NP ARGS...: exosbi on NP ranks; stdout and stderr go to $WORK/last.out and
# $WORK/last.err, and the exit status is returned.
run() {
  local np=$1
  shift
  "$MPIEXEC" -n "$np" "$EXE" "$@" >"$WORK/last.out" 2>"$WORK/last.err"
}

# expect STATUS NP ARGS...: run, and check the exit status.
expect() {
  local want=$1 got
  shift
  run "$@"
  got=$?
  if [ "$got" -ne "$want" ]; then
    fail "exosbi ${*:2} on $1 ranks exited with $got, expected $want"
    sed 's/^/    | /' "$WORK/last.err" | tail -15 >&2
    return 1
  fi
  return 0
}

# stderr_has TEXT: the last run's stderr contains TEXT.
stderr_has() {
  grep -qF -- "$1" "$WORK/last.err" || {
    fail "stderr does not contain '$1':"
    sed 's/^/    | /' "$WORK/last.err" | tail -10 >&2
  }
}

# absent PATH...: none of these files exist.
absent() {
  for p in "$@"; do [ ! -e "$p" ] || fail "$p exists but should not"; done
}

# attr FILE NAME: the value of a scalar root attribute, via h5dump.
attr() {
  h5dump -a "/$2" "$1" 2>/dev/null | sed -n 's/^ *(0): *//p' | tr -d '"'
}

# same_corpus A B: the data groups of two corpora are identical (attributes of
# the root, such as creator, may differ).  h5diff reports shape mismatches as
# "not comparable" with status 0, so that text counts as a difference too.
same_corpus() {
  local g out rc
  for g in /train /validation /test /normalization /parameters /datasets; do
    out=$(h5diff -r "$1" "$2" "$g" "$g" 2>&1)
    rc=$?
    if [ $rc -ne 0 ] || grep -q "not comparable" <<<"$out"; then
      fail "$1 and $2 differ in $g (h5diff status $rc)"
      echo "$out" | tail -8 | sed 's/^/    | /' >&2
      return 1
    fi
  done
  return 0
}

finish() {
  if [ "$FAILURES" -ne 0 ]; then
    echo "$(basename "$0"): $FAILURES failure(s)"
    exit 1
  fi
  echo "$(basename "$0"): all checks passed"
  exit 0
}
