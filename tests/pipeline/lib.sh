# Helpers for the command-line tests.  Sourced by each tests/pipeline/*.sh;
# the test environment provides EXOSBI_EXE and EXOSBI_SOURCE_DIR.
set -u
EXE=${EXOSBI_EXE:?EXOSBI_EXE is not set}
SRC=${EXOSBI_SOURCE_DIR:?EXOSBI_SOURCE_DIR is not set}
FIX=$SRC/tests/data/pipeline
WORK=$(mktemp -d "${TMPDIR:-/tmp}/exosbi-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
FAILED=0
CHECKS=0

fail() { echo "FAIL: $*" >&2; FAILED=$((FAILED + 1)); }
ok() { CHECKS=$((CHECKS + 1)); }

# run NP ARGS...: exosbi on NP ranks, quiet; stdout and stderr go to $WORK/last.{out,err}.
run() {
  local np=$1; shift
  mpiexec -n "$np" "$EXE" "$@" >"$WORK/last.out" 2>"$WORK/last.err"
}

# expect STATUS PATTERN NP ARGS...: the command exits with STATUS and stderr matches PATTERN.
expect() {
  local want=$1 pattern=$2; shift 2
  run "$@"
  local got=$?
  CHECKS=$((CHECKS + 1))
  if [ "$got" -ne "$want" ]; then
    fail "exosbi ${*:2}: exit $got, expected $want; stderr: $(tail -3 "$WORK/last.err")"
  elif ! grep -q -- "$pattern" "$WORK/last.err"; then
    fail "exosbi ${*:2}: stderr lacks '$pattern': $(tail -3 "$WORK/last.err")"
  fi
}

# must NP ARGS...: the command succeeds.
must() {
  if ! run "$@"; then
    fail "exosbi ${*:2} failed: $(tail -5 "$WORK/last.err")"
    finish
  fi
  ok
}

# same_data A B [OBJECTS...]: h5diff finds no difference (in the given objects, or all).
same_data() {
  local a=$1 b=$2; shift 2
  CHECKS=$((CHECKS + 1))
  if [ $# -eq 0 ]; then
    h5diff -q "$a" "$b" >/dev/null 2>&1 || fail "h5diff $a $b: files differ"
  else
    for obj in "$@"; do
      h5diff -q "$a" "$b" "$obj" >/dev/null 2>&1 || fail "h5diff $a $b $obj: differ"
    done
  fi
}

absent() { CHECKS=$((CHECKS + 1)); [ ! -e "$1" ] || fail "$1 exists but should not"; }
present() { CHECKS=$((CHECKS + 1)); [ -s "$1" ] || fail "$1 is missing"; }

# json_field FILE KEY: a number from a one-line JSON object.
json_field() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

finish() {
  echo "$(basename "$0"): $CHECKS checks, $FAILED failed"
  [ "$FAILED" -eq 0 ] && exit 0 || exit 1
}
