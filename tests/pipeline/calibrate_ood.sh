#!/bin/bash
# The out-of-distribution diagnostic of infer: an observation far outside the
# prior predictive is flagged (warning, /ood/flag = 1); a test-split simulation
# is not; a model whose corpus cannot be found reports the distance without a
# threshold (flag -1); TARP is in the SBC report and its JSON; sensitivity
# writes its report and JSON payload; report.py draws the new figures.
source "$(dirname "$0")/lib.sh"
NP=${1:-2}
must "$NP" simulate "$FIX/lg5.yaml" -o "$WORK/c.h5" --quiet
must "$NP" train "$FIX/lg5.yaml" "$WORK/c.h5" -o "$WORK/m.h5" --max-epochs 2 --quiet

/usr/bin/python3 - "$WORK/c.h5" "$WORK/test0.txt" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    x = f["test/x/x"][0]
open(sys.argv[2], "w").write("".join(f"{v!r}\n" for v in x.tolist()))
PY
for i in $(seq 10); do echo 40.0; done >"$WORK/far.txt"

ood() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['ood'][sys.argv[2]])" "$WORK/last.out" "$1"; }
must "$NP" infer "$FIX/lg5.yaml" "$WORK/m.h5" "$WORK/test0.txt" -o "$WORK/in.h5" --samples 500 --json
CHECKS=$((CHECKS + 1))
[ "$(ood flag)" = "0" ] || fail "a test-split simulation was flagged: $(cat "$WORK/last.out")"
must "$NP" infer "$FIX/lg5.yaml" "$WORK/m.h5" "$WORK/far.txt" -o "$WORK/out.h5" --samples 500 --json
CHECKS=$((CHECKS + 1))
[ "$(ood flag)" = "1" ] || fail "a far observation was not flagged: $(cat "$WORK/last.out")"
CHECKS=$((CHECKS + 1))
grep -q "OUT OF DISTRIBUTION" "$WORK/last.err" || fail "no warning for the far observation"
CHECKS=$((CHECKS + 1))
/usr/bin/python3 - "$WORK/in.h5" "$WORK/out.h5" <<'PY' || fail "/ood in POSTERIOR.h5"
import sys, h5py
for path, flag in zip(sys.argv[1:], (0, 1)):
    with h5py.File(path, "r") as f:
        assert int(f["ood/flag"][0]) == flag, (path, f["ood/flag"][()])
        assert f["ood/threshold"][0] > 0 and f["ood/distance"][0] > 0
        assert f["ood"].attrs["n_calibration"] == 400, f["ood"].attrs["n_calibration"]
PY

# The corpus moved away: the distances train stored in the model give the
# same threshold; a model without them (an older file) reports the distance
# without a threshold (flag -1); --ood-corpus calibrates on a named corpus.
mv "$WORK/c.h5" "$WORK/elsewhere.h5"
must "$NP" infer "$FIX/lg5.yaml" "$WORK/m.h5" "$WORK/far.txt" -o "$WORK/stored.h5" --samples 500 --json
CHECKS=$((CHECKS + 1))
[ "$(ood flag)" = "1" ] || fail "the stored calibration does not flag the far observation: $(cat "$WORK/last.out")"
must "$NP" infer "$FIX/lg5.yaml" "$WORK/m.h5" "$WORK/far.txt" -o "$WORK/fromcorpus.h5" --samples 500 --json \
  --ood-corpus "$WORK/elsewhere.h5"
CHECKS=$((CHECKS + 1))
/usr/bin/python3 - "$WORK/fromcorpus.h5" "$WORK/stored.h5" <<'PY' || fail "stored OOD threshold"
import sys, h5py
a, b = (h5py.File(p, "r") for p in sys.argv[1:])
assert a["ood/threshold"][0] == b["ood/threshold"][0], (a["ood/threshold"][0], b["ood/threshold"][0])
assert b["ood"].attrs["n_calibration"] == 400
assert "elsewhere.h5" in a["ood"].attrs["calibration_corpus"], a["ood"].attrs["calibration_corpus"]
assert "stored in the model" in b["ood"].attrs["calibration_corpus"], b["ood"].attrs["calibration_corpus"]
PY
cp "$WORK/m.h5" "$WORK/m_old.h5"
/usr/bin/python3 -c "import h5py, sys; f = h5py.File(sys.argv[1], 'a'); del f['ood']" "$WORK/m_old.h5"
must "$NP" infer "$FIX/lg5.yaml" "$WORK/m_old.h5" "$WORK/far.txt" -o "$WORK/nocal.h5" --samples 500 --json
CHECKS=$((CHECKS + 1))
[ "$(ood flag)" = "-1" ] || fail "without stored distances or a corpus the flag is not -1: $(cat "$WORK/last.out")"
must "$NP" infer "$FIX/lg5.yaml" "$WORK/m_old.h5" "$WORK/far.txt" -o "$WORK/cal.h5" --samples 500 --json \
  --ood-corpus "$WORK/elsewhere.h5" --ood-rate 0.05
CHECKS=$((CHECKS + 1))
[ "$(ood flag)" = "1" ] || fail "--ood-corpus: $(cat "$WORK/last.out")"

# Stored distances that are unsorted, not finite, empty or not a vector are
# a damaged model: exit 4 naming the file and the dataset, on every rank, and
# no posterior written.
for damage in unsorted nan empty matrix; do
  cp "$WORK/m.h5" "$WORK/m_$damage.h5"
  /usr/bin/python3 - "$WORK/m_$damage.h5" "$damage" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "a") as f:
    d = f["ood/calibration_distances"]
    v = d[()]
    if sys.argv[2] in ("empty", "matrix"):
        attrs = dict(d.attrs)
        del f["ood/calibration_distances"]
        v = v[:0] if sys.argv[2] == "empty" else np.stack([v, v])
        d = f.create_dataset("ood/calibration_distances", data=v)
        d.attrs.update(attrs)
    elif sys.argv[2] == "unsorted":
        v[0], v[-1] = v[-1], v[0]
        d[...] = v
    else:
        v[len(v) // 2] = np.nan
        d[...] = v
PY
  expect 4 "m_$damage.h5.*ood/calibration_distances" "$NP" infer "$FIX/lg5.yaml" "$WORK/m_$damage.h5" \
    "$WORK/far.txt" -o "$WORK/damaged_$damage.h5" --samples 50
  absent "$WORK/damaged_$damage.h5"
done

must "$NP" sbc "$WORK/m.h5" "$WORK/elsewhere.h5" -o "$WORK/sbc.h5" --samples 100 --max-cases 200 --json
CHECKS=$((CHECKS + 1))
/usr/bin/python3 - "$WORK/last.out" "$WORK/sbc.h5" <<'PY' || fail "TARP in the SBC report"
import json, sys, h5py
r = json.load(open(sys.argv[1]))
with h5py.File(sys.argv[2], "r") as f:
    a, e = f["tarp/alpha"][()], f["tarp/ecp"][()]
    d = float(f.attrs["tarp_max_distance"])
    assert a.shape == e.shape == (101,) and a[0] == 0 and a[-1] == 1
    assert abs(d - max(abs(e - a))) < 1e-12 and abs(d - r["tarp_max_distance"]) < 1e-5, (d, r)
    assert f["tarp/f"].shape == (200,) and f["tarp/references"].shape == (200, 5)
PY

must "$NP" sensitivity "$FIX/lg5.yaml" "$WORK/in.h5" "$WORK/test0.txt" -o "$WORK/sens.h5" --json
CHECKS=$((CHECKS + 1))
/usr/bin/python3 - "$WORK/last.out" "$WORK/sens.h5" <<'PY' || fail "sensitivity report"
import json, sys, h5py
r = json.load(open(sys.argv[1]))
assert len(r["representative_points"]) == 5 and len(r["parameter_diagnostics"]) == 5, r.keys()
with h5py.File(sys.argv[2], "r") as f:
    assert json.loads(f.attrs["payload"]) == r
    assert f["points/0/whitened_jacobian"].shape == (10, 5) and f["diagnosis"].shape == (5,)
PY
# --obs-cov: diag(sigma^2) reproduces the plain report; a correlated
# covariance changes the Fisher covariance; one that is not positive definite
# is refused.
/usr/bin/python3 - "$WORK" <<'PY'
import sys
w = sys.argv[1]
def save(name, f):
    open(f"{w}/{name}", "w").write("".join(" ".join(repr(f(i, j)) for j in range(10)) + "\n" for i in range(10)))
save("diag.cov", lambda i, j: 0.09 if i == j else 0.0)
save("corr.cov", lambda i, j: 0.09 * 0.7 ** abs(i - j))
save("bad.cov", lambda i, j: 0.09 if i == j else 0.2)
PY
must "$NP" sensitivity "$FIX/lg5.yaml" "$WORK/in.h5" "$WORK/test0.txt" -o "$WORK/sens_diag.h5" --obs-cov "$WORK/diag.cov"
must "$NP" sensitivity "$FIX/lg5.yaml" "$WORK/in.h5" "$WORK/test0.txt" -o "$WORK/sens_corr.h5" --obs-cov "x=$WORK/corr.cov"
CHECKS=$((CHECKS + 1))
/usr/bin/python3 - "$WORK/sens.h5" "$WORK/sens_diag.h5" "$WORK/sens_corr.h5" <<'PY' || fail "sensitivity --obs-cov"
import sys, h5py, numpy as np
fs = [h5py.File(p, "r") for p in sys.argv[1:]]
c = [f["points/0/fisher_covariance"][()] for f in fs]
assert fs[0].attrs["whitening"] == "uncertainties" and fs[1].attrs["whitening"] == "covariance", fs[1].attrs["whitening"]
assert fs[2]["observation/covariance"].shape == (10, 10)
assert np.allclose(c[0], c[1], rtol=1e-9, atol=0), (c[0], c[1])
assert not np.allclose(c[0], c[2], rtol=1e-2, atol=0)
PY
expect 2 "not positive definite" "$NP" sensitivity "$FIX/lg5.yaml" "$WORK/in.h5" "$WORK/test0.txt" -o "$WORK/x.h5" \
  --obs-cov "$WORK/bad.cov"
absent "$WORK/x.h5"
expect 3 "different task" "$NP" sensitivity "$FIX/lg5_other.yaml" "$WORK/in.h5" "$WORK/test0.txt" -o "$WORK/x.h5"
absent "$WORK/x.h5"

if /usr/bin/python3 -c "import h5py, matplotlib" 2>/dev/null; then
  mkdir -p "$WORK/figs"
  cp "$WORK/sbc.h5" "$WORK/figs/sbc.h5"
  cp "$WORK/sens.h5" "$WORK/figs/sensitivity.h5"
  must 1 predictive "$FIX/lg5.yaml" "$WORK/m.h5" "$WORK/elsewhere.h5" -o "$WORK/figs/ppc.h5" --max-cases 8 --quiet
  CHECKS=$((CHECKS + 1))
  /usr/bin/python3 "$SRC/postprocess/report.py" "$WORK/figs" >/dev/null || fail "report.py"
  for f in sbc_tarp.png predictive.png sensitivity_heatmaps.png sensitivity_singular_values.png; do
    present "$WORK/figs/$f"
  done
  # index.html parses, and every image it shows exists and is a PNG.
  CHECKS=$((CHECKS + 1))
  /usr/bin/python3 - "$WORK/figs" <<'PY' || fail "index.html"
import sys, os
from html.parser import HTMLParser
d = sys.argv[1]
class P(HTMLParser):
    imgs = []
    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.imgs.append(dict(attrs)["src"])
p = P()
p.feed(open(os.path.join(d, "index.html")).read())
assert len(p.imgs) >= 5, p.imgs
for src in p.imgs:
    with open(os.path.join(d, src), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", src
PY
  # With a browser on the machine, the page loads in it (headless) and its DOM holds the images.
  browser=$(command -v chromium || command -v chromium-browser || true)
  if [ -n "$browser" ]; then
    CHECKS=$((CHECKS + 1))
    timeout 120 "$browser" --headless --no-sandbox --disable-gpu --allow-file-access-from-files \
      --virtual-time-budget=5000 --dump-dom "file://$WORK/figs/index.html" >"$WORK/dom.html" 2>/dev/null \
      || fail "the browser cannot open index.html"
    grep -q "<img" "$WORK/dom.html" || fail "the browser shows no images: $(head -c 300 "$WORK/dom.html")"
  fi
fi
finish
