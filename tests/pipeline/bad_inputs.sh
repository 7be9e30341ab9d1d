#!/bin/bash
# Bad inputs to train, sbc and infer: the documented exit status, a message naming
# the file and what is wrong, on every rank count, and no output left behind.
source "$(dirname "$0")/lib.sh"
NP=${1:-2}
must "$NP" simulate "$FIX/lg5.yaml" -o "$WORK/c.h5" --quiet
must "$NP" train "$FIX/lg5.yaml" "$WORK/c.h5" -o "$WORK/m.h5" --max-epochs 2 --quiet

# usage errors: exit 2
expect 2 "expected TASK and CORPUS" "$NP" train "$FIX/lg5.yaml" -o "$WORK/x.h5"
expect 2 "missing -o" "$NP" train "$FIX/lg5.yaml" "$WORK/c.h5"
expect 2 "learning_rate" "$NP" train "$FIX/lg5.yaml" "$WORK/c.h5" -o "$WORK/x.h5" --learning-rate -1
expect 2 "--batch-size" "$NP" train "$FIX/lg5.yaml" "$WORK/c.h5" -o "$WORK/x.h5" --batch-size many
expect 2 "time_features" "$NP" train "$FIX/lg5.yaml" "$WORK/c.h5" -o "$WORK/x.h5" --estimator fmpe --time-features -3
expect 2 "time_features" "$NP" train "$FIX/lg5.yaml" "$WORK/c.h5" -o "$WORK/x.h5" --estimator fmpe --time-features 9
expect 2 "unknown command" "$NP" frobnicate
expect 2 "no_such_task.yaml" "$NP" train "$FIX/no_such_task.yaml" "$WORK/c.h5" -o "$WORK/x.h5"
absent "$WORK/x.h5"; absent "$WORK/x.h5.partial"

# every malformed task fixture: exit 2 naming file:line, and no corpus started
for bad in "$SRC"/tests/data/tasks/bad_*.yaml; do
  name=$(basename "$bad")
  expect 2 "$name:[0-9]" "$NP" simulate "$bad" -o "$WORK/x.h5"
done
absent "$WORK/x.h5"; absent "$WORK/x.h5.partial"

# a corpus of another task: exit 3 naming the differing field
expect 3 "parameters\[1\]" "$NP" train "$FIX/lg5_other.yaml" "$WORK/c.h5" -o "$WORK/x.h5"
expect 3 "fingerprint" "$NP" infer "$FIX/lg5_other.yaml" "$WORK/m.h5" /dev/null -o "$WORK/x.h5"
absent "$WORK/x.h5"

# truncated and foreign files: exit 4 naming the file
head -c 3000 "$WORK/c.h5" >"$WORK/trunc.h5"
echo "not an hdf5 file" >"$WORK/text.h5"
expect 4 "trunc.h5" "$NP" train "$FIX/lg5.yaml" "$WORK/trunc.h5" -o "$WORK/x.h5"
expect 4 "text.h5" "$NP" sbc "$WORK/text.h5" "$WORK/c.h5" -o "$WORK/x.h5"
expect 4 "c.h5" "$NP" sbc "$WORK/c.h5" "$WORK/c.h5" -o "$WORK/x.h5"
expect 4 "text.h5" "$NP" infer "$FIX/lg5.yaml" "$WORK/text.h5" /dev/null -o "$WORK/x.h5"
expect 4 "text.h5" "$NP" predictive "$FIX/lg5.yaml" "$WORK/text.h5" "$WORK/c.h5" -o "$WORK/x.h5"
printf '1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n' >"$WORK/ten.txt"
expect 4 "trunc.h5" "$NP" sensitivity "$FIX/lg5.yaml" "$WORK/trunc.h5" "$WORK/ten.txt" -o "$WORK/x.h5"
# a corrupt checkpoint: --resume refuses it, naming the file
cp "$WORK/text.h5" "$WORK/y.h5.ckpt"
expect 4 "y.h5.ckpt" "$NP" train "$FIX/lg5.yaml" "$WORK/c.h5" -o "$WORK/y.h5" --resume --max-epochs 2
absent "$WORK/y.h5"
absent "$WORK/x.h5"; absent "$WORK/x.h5.partial"

# observations: wrong grid is exit 3, malformed is exit 2 naming file:line
seq 1 9 >"$WORK/short.txt"
expect 3 "short.txt" "$NP" infer "$FIX/lg5.yaml" "$WORK/m.h5" "$WORK/short.txt" -o "$WORK/x.h5"
printf '1\n2\n3\n4\nnan\n6\n7\n8\n9\n10\n' >"$WORK/nan.txt"
expect 2 "nan.txt:5" "$NP" infer "$FIX/lg5.yaml" "$WORK/m.h5" "$WORK/nan.txt" -o "$WORK/x.h5"
printf '1 0.3\n2 0.3\n3\n' >"$WORK/ragged.txt"
expect 2 "ragged.txt:3" "$NP" infer "$FIX/lg5.yaml" "$WORK/m.h5" "$WORK/ragged.txt" -o "$WORK/x.h5"
expect 2 "no dataset 'y'" "$NP" infer "$FIX/lg5.yaml" "$WORK/m.h5" --obs y="$WORK/nan.txt" -o "$WORK/x.h5"
expect 2 "--obs expects NAME=PATH" "$NP" infer "$FIX/lg5.yaml" "$WORK/m.h5" --obs "$WORK/ten.txt" -o "$WORK/x.h5"
expect 2 "--obs expects NAME=PATH" "$NP" sensitivity "$FIX/lg5.yaml" "$WORK/m.h5" --obs "=$WORK/ten.txt" -o "$WORK/x.h5"
expect 2 "--obs-cov expects \[NAME=\]PATH" "$NP" infer "$FIX/lg5.yaml" "$WORK/m.h5" "$WORK/ten.txt" --obs-cov "x=" \
  -o "$WORK/x.h5"
absent "$WORK/x.h5"; absent "$WORK/x.h5.partial"
finish
