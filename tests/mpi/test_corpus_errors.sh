#!/bin/bash
# Bad inputs: exit statuses, messages that name the file, and nothing
# half-written left under a final name.
source "$(dirname "$0")/test_corpus_common.sh"

expect 0 1 simulate "$TASK" -o "$WORK/good.h5" --quiet
size=$(stat -c %s "$WORK/good.h5")

# A truncated corpus and a text file given to a reader: status 4, path named.
head -c $((size / 2)) "$WORK/good.h5" >"$WORK/truncated.h5"
expect 4 2 merge -o "$WORK/m1.h5" "$WORK/truncated.h5" && stderr_has "$WORK/truncated.h5"
head -c 2000 "$WORK/good.h5" >"$WORK/short.h5"
expect 4 1 merge -o "$WORK/m2.h5" "$WORK/short.h5" && stderr_has "$WORK/short.h5"
printf 'theta,x\n1,2\n' >"$WORK/notes.txt"
expect 4 2 merge -o "$WORK/m3.h5" "$WORK/notes.txt" && stderr_has "$WORK/notes.txt"
expect 4 1 merge -o "$WORK/m4.h5" "$WORK/no_such_file.h5" && stderr_has "$WORK/no_such_file.h5"
absent "$WORK/m1.h5" "$WORK/m2.h5" "$WORK/m3.h5" "$WORK/m4.h5"

# A truncated partial file given to --resume.
cp "$WORK/truncated.h5" "$WORK/r.h5.partial"
expect 4 2 simulate "$TASK" -o "$WORK/r.h5" --resume && stderr_has "$WORK/r.h5.partial"
absent "$WORK/r.h5"

# An unfinished shard given to merge: incomplete, status 4.
EXOSBI_TEST_KILL_AFTER_BATCHES=1 run 1 simulate "$TASK" -o "$WORK/u.h5" --shard 0/2 --quiet
[ -e "$WORK/u.h5.partial" ] || fail "the killed shard left no partial file"
expect 4 1 merge -o "$WORK/m5.h5" "$WORK/u.h5.partial" && stderr_has "is incomplete; resume it with exosbi simulate --resume"
absent "$WORK/m5.h5" "$WORK/u.h5"

# A partial file of another task cannot be resumed: status 3.
sed 's/scale: 1.0/scale: 3.0/' "$TASK" >"$WORK/other.yaml"
cp "$WORK/u.h5.partial" "$WORK/x.h5.partial"
expect 3 2 simulate "$WORK/other.yaml" -o "$WORK/x.h5" --shard 0/2 --resume && stderr_has "$WORK/x.h5.partial"
absent "$WORK/x.h5"
# Nor one of another shard.
expect 3 1 simulate "$TASK" -o "$WORK/x.h5" --shard 1/2 --resume && stderr_has "shard index"
absent "$WORK/x.h5"

# A missing task file is invalid input, and no output appears.
expect 2 2 simulate "$WORK/missing.yaml" -o "$WORK/y.h5" && stderr_has "$WORK/missing.yaml"
absent "$WORK/y.h5" "$WORK/y.h5.partial"

# A partial output without --resume: refused, kept, nothing under the final name.
cp "$WORK/u.h5.partial" "$WORK/z.h5.partial"
expect 2 1 simulate "$TASK" -o "$WORK/z.h5" && stderr_has "--resume"
[ -e "$WORK/z.h5.partial" ] || fail "the refused run removed z.h5.partial"
absent "$WORK/z.h5"

# An existing complete output: refused without --force.
expect 2 1 simulate "$TASK" -o "$WORK/good.h5" && stderr_has "--force"
expect 0 2 simulate "$TASK" -o "$WORK/good.h5" --force --quiet
absent "$WORK/good.h5.partial"

# Usage errors and --help.
expect 2 1 simulate "$TASK" && stderr_has "-o"
expect 2 1 simulate "$TASK" -o "$WORK/w.h5" --shard 3/3 && stderr_has "--shard"
expect 2 1 simulate "$TASK" -o "$WORK/w.h5" --no-such-option && stderr_has "--no-such-option"
expect 2 1 simulate "$TASK" -o "$WORK/w.h5" -n 0
expect 2 1 merge "$WORK/good.h5"
absent "$WORK/w.h5" "$WORK/w.h5.partial"
expect 0 2 simulate --help && { grep -q "usage: .*exosbi simulate" "$WORK/last.out" || fail "simulate --help printed no usage"; }
[ "$(grep -c usage: "$WORK/last.out")" -eq 1 ] || fail "simulate --help printed on more than one rank"
expect 0 1 merge --help && { grep -q "usage: .*exosbi merge" "$WORK/last.out" || fail "merge --help printed no usage"; }

# -n overrides the task's number of simulations.
expect 0 2 simulate "$TASK" -o "$WORK/n500.h5" -n 500 --json --quiet
grep -qF '"n_simulations": 500' "$WORK/last.out" || fail "-n 500 gave $(cat "$WORK/last.out")"
[ "$(attr "$WORK/n500.h5" n_simulations)" = 500 ] || fail "-n 500 stored n_simulations $(attr "$WORK/n500.h5" n_simulations)"
finish
