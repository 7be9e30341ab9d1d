#!/bin/bash
# infer on observations as they come: a finer text spectrum is refused (exit 3)
# and rebinned with --rebin (exact for a linear spectrum, errors halved); a
# JWST x1d-like FITS file is read with its units; NaN points are refused with
# their count (exit 3) unless --rebin averages over them; a FITS file without
# FLUX is exit 2 naming file and column; --obs-cov stores the covariance and
# warns about what the posterior ignores; --predictive adds the band, the same
# on 1 and NP ranks.
# Usage: infer_observations.sh NP FITS_WRITER (test_observation_fits).
source "$(dirname "$0")/lib.sh"
NP=${1:-2}
WRITER=${2:?the FITS writer (test_observation_fits) is required}

# A two-parameter linear-Gaussian task on a 10-point wavelength grid 1.05 .. 1.95 um.
cat >"$WORK/t.yaml" <<'EOF'
name: infer-observations-test
version: 1
parameters:
  - {name: a, prior: normal, mean: 0.0, std: 1.0}
  - {name: b, prior: normal, mean: 1.0, std: 2.0}
forward_model:
  family: linear_gaussian
  settings: {seed: 5, scale: 1.0}
datasets:
  - name: x
    modality: spectrum
    coordinates: [1.05, 1.15, 1.25, 1.35, 1.45, 1.55, 1.65, 1.75, 1.85, 1.95]
    uncertainty: 0.3
simulation:
  n_simulations: 1000
  batch_size: 500
  seed: 17
  splits: {train: 0.8, validation: 0.1, test: 0.1}
training:
  batch_size: 128
  learning_rate: 2.0e-3
  hidden: 16
  embed_hidden: 16
  max_epochs: 2
  patience: 8
EOF
must "$NP" simulate "$WORK/t.yaml" -o "$WORK/c.h5" --quiet
must "$NP" train "$WORK/t.yaml" "$WORK/c.h5" -o "$WORK/m.h5" --quiet

# The spectrum 0.5 + 0.3 lambda on the task's grid, and on a grid four times finer
# (40 bins of 0.025 um, error 0.6, so that four of them average to 0.3).
/usr/bin/python3 - "$WORK" <<'PY'
import sys
w = sys.argv[1]
f = lambda l: 0.5 + 0.3 * l
with open(f"{w}/coarse.txt", "w") as o:
    for j in range(10):
        c = 1.05 + 0.1 * j
        o.write(f"{c!r} {f(c)!r} 0.3\n")
fine = [1.0 + 0.025 * (i + 0.5) for i in range(40)]
with open(f"{w}/fine.txt", "w") as o:
    o.write("# wavelength width value error\n")
    for c in fine:
        o.write(f"{c!r}, 0.025, {f(c)!r}, 0.6\n")
with open(f"{w}/fine_nan.txt", "w") as o:
    for i, c in enumerate(fine):
        o.write(f"{c!r} {'nan' if i == 5 else repr(f(c))} 0.6\n")
with open(f"{w}/coarse_nan.txt", "w") as o:
    for j in range(10):
        c = 1.05 + 0.1 * j
        o.write(f"{c!r} {'nan' if j in (2, 7) else repr(f(c))} 0.3\n")
# Covariances on the task's grid: the task's variance with neighbour correlation
# 0.3, and one with four times the variance.
def write(path, var, rho):
    with open(path, "w") as o:
        for i in range(10):
            o.write(" ".join(repr(var if i == k else (rho * var if abs(i - k) == 1 else 0.0))
                             for k in range(10)) + "\n")
write(f"{w}/cov_corr.txt", 0.09, 0.3)
write(f"{w}/cov_big.txt", 0.36, 0.0)
write(f"{w}/cov_indef.txt", 0.09, 0.9)  # symmetric, not positive definite
with open(f"{w}/cov_nan.txt", "w") as o:
    for i in range(10):
        o.write(" ".join("nan" if i == k == 3 else repr(0.09 if i == k else 0.0) for k in range(10)) + "\n")
with open(f"{w}/cov_bad.txt", "w") as o:
    o.write("0.09 0.01\n0.02 0.09\n")
PY
"$WRITER" --write "$WORK/x1d.fits" "$WORK/coarse.txt" || fail "writing x1d.fits"
"$WRITER" --write "$WORK/x1d_nan.fits" "$WORK/coarse_nan.txt" || fail "writing x1d_nan.fits"
"$WRITER" --write "$WORK/x1d_fine_nan.fits" "$WORK/fine_nan.txt" || fail "writing x1d_fine_nan.fits"
"$WRITER" --write "$WORK/noflux.fits" "$WORK/coarse.txt" --no-flux || fail "writing noflux.fits"

must "$NP" infer "$WORK/t.yaml" "$WORK/m.h5" "$WORK/coarse.txt" -o "$WORK/p_coarse.h5" --samples 300 --quiet
# A finer grid: exit 3 without --rebin, and the coarse values with it.
expect 3 "different grid" "$NP" infer "$WORK/t.yaml" "$WORK/m.h5" "$WORK/fine.txt" -o "$WORK/x.h5"
CHECKS=$((CHECKS + 1))
grep -q -- "--rebin" "$WORK/last.err" || fail "the grid message does not mention --rebin"
absent "$WORK/x.h5"
must "$NP" infer "$WORK/t.yaml" "$WORK/m.h5" "$WORK/fine.txt" -o "$WORK/p_fine.h5" --samples 300 --rebin --quiet
CHECKS=$((CHECKS + 1))
/usr/bin/python3 - "$WORK/p_coarse.h5" "$WORK/p_fine.h5" <<'PY' || fail "rebinned observation"
import sys, h5py
with h5py.File(sys.argv[1], "r") as a, h5py.File(sys.argv[2], "r") as b:
    va, vb = a["observation/x/value"][()], b["observation/x/value"][()]
    assert max(abs(va - vb)) < 1e-12, (va, vb)
    ub = b["observation/x/uncertainty"][()]
    assert max(abs(ub - 0.3)) < 1e-12, ub
    g = b["observation/x"]
    assert g.attrs["rebinned"] == 1 and g.attrs["n_file_points"] == 40, dict(g.attrs)
    assert g["file_value"].shape == (40,) and a["observation/x"].attrs["rebinned"] == 0
PY

# FITS: units kept, NaN points refused on the grid, averaged over when rebinned.
must "$NP" infer "$WORK/t.yaml" "$WORK/m.h5" "$WORK/x1d.fits" -o "$WORK/p_fits.h5" --samples 300 --quiet
CHECKS=$((CHECKS + 1))
/usr/bin/python3 - "$WORK/p_coarse.h5" "$WORK/p_fits.h5" <<'PY' || fail "FITS observation"
import sys, h5py
with h5py.File(sys.argv[1], "r") as a, h5py.File(sys.argv[2], "r") as b:
    assert max(abs(a["observation/x/value"][()] - b["observation/x/value"][()])) == 0
    g = b["observation/x"].attrs
    assert g["format"] == "fits" and g["value_unit"] == "Jy" and g["coordinate_unit"] == "um", dict(g)
    assert "EXTRACT1D" in g["source"], g["source"]
    assert (a["samples"][()] == b["samples"][()]).all()
PY
expect 3 "2 of 10 points" "$NP" infer "$WORK/t.yaml" "$WORK/m.h5" "$WORK/x1d_nan.fits" -o "$WORK/x.h5"
CHECKS=$((CHECKS + 1))
grep -q "missing" "$WORK/last.err" || fail "the missing-point message does not say 'missing'"
absent "$WORK/x.h5"
expect 3 "2 of 10 points" "$NP" infer "$WORK/t.yaml" "$WORK/m.h5" "$WORK/x1d_nan.fits[EXTRACT1D]" -o "$WORK/x.h5" \
  --rebin
must "$NP" infer "$WORK/t.yaml" "$WORK/m.h5" "$WORK/x1d_fine_nan.fits" -o "$WORK/p_fnan.h5" --samples 300 --rebin \
  --quiet
CHECKS=$((CHECKS + 1))
/usr/bin/python3 - "$WORK/p_fnan.h5" <<'PY' || fail "rebinned FITS with a NaN point"
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    v, u = f["observation/x/value"][()], f["observation/x/uncertainty"][()]
    assert abs(v[1] - (0.5 + 0.3 * (1.0 + 0.025 * 4.5 + 1.0 + 0.025 * 6.5 + 1.0 + 0.025 * 7.5) / 3)) < 1e-12, v
    assert abs(u[1] - 0.6 / 3 ** 0.5) < 1e-12 and abs(u[0] - 0.3) < 1e-12, u
    assert f["observation/x"].attrs["n_file_missing"] == 1 and f["observation/x/file_missing"][5] == 1
PY
expect 2 "noflux.fits" "$NP" infer "$WORK/t.yaml" "$WORK/m.h5" "$WORK/noflux.fits" -o "$WORK/x.h5"
CHECKS=$((CHECKS + 1))
grep -q "FLUX" "$WORK/last.err" || fail "the no-FLUX message does not name the column"

# Covariance files.
must "$NP" infer "$WORK/t.yaml" "$WORK/m.h5" "$WORK/coarse.txt" -o "$WORK/p_cov.h5" --samples 300 \
  --obs-cov "x=$WORK/cov_corr.txt"
CHECKS=$((CHECKS + 1))
grep -q "correlations up to 0.3" "$WORK/last.err" ||
  fail "no warning about ignored correlations: $(cat "$WORK/last.err")"
CHECKS=$((CHECKS + 1))
! grep -q "differs from the task" "$WORK/last.err" || fail "a matching diagonal was reported as different"
must "$NP" infer "$WORK/t.yaml" "$WORK/m.h5" "$WORK/coarse.txt" -o "$WORK/p_covbig.h5" --samples 300 \
  --obs-cov "$WORK/cov_big.txt"
CHECKS=$((CHECKS + 1))
grep -q "differs from the task's sigma^2 at 10 of 10" "$WORK/last.err" || fail "no warning about the diagonal"
CHECKS=$((CHECKS + 1))
/usr/bin/python3 - "$WORK/p_cov.h5" "$WORK/p_covbig.h5" <<'PY' || fail "covariance in POSTERIOR.h5"
import sys, h5py
with h5py.File(sys.argv[1], "r") as a, h5py.File(sys.argv[2], "r") as b:
    c = a["observation/x/covariance"][()]
    assert c.shape == (10, 10) and abs(c[0, 1] - 0.027) < 1e-15
    assert max(abs(b["observation/x/uncertainty"][()] - 0.6)) < 1e-12
PY
expect 2 "cov_bad.txt:2" "$NP" infer "$WORK/t.yaml" "$WORK/m.h5" "$WORK/coarse.txt" -o "$WORK/x.h5" \
  --obs-cov "$WORK/cov_bad.txt"
expect 2 "cov_indef.txt.*positive definite" "$NP" infer "$WORK/t.yaml" "$WORK/m.h5" "$WORK/coarse.txt" \
  -o "$WORK/x.h5" --obs-cov "$WORK/cov_indef.txt"
expect 2 "cov_nan.txt" "$NP" infer "$WORK/t.yaml" "$WORK/m.h5" "$WORK/coarse.txt" -o "$WORK/x.h5" \
  --obs-cov "$WORK/cov_nan.txt"
expect 2 "cov_missing.txt" "$NP" infer "$WORK/t.yaml" "$WORK/m.h5" "$WORK/coarse.txt" -o "$WORK/x.h5" \
  --obs-cov "$WORK/cov_missing.txt"
expect 3 "cov_big.txt" "$NP" infer "$WORK/t.yaml" "$WORK/m.h5" "$WORK/fine.txt" -o "$WORK/x.h5" --rebin \
  --obs-cov "x=$WORK/cov_big.txt"
expect 2 "no dataset 'y'" "$NP" infer "$WORK/t.yaml" "$WORK/m.h5" "$WORK/coarse.txt" -o "$WORK/x.h5" \
  --obs-cov "y=$WORK/cov_big.txt"
absent "$WORK/x.h5"

# The posterior-predictive band, identical on 1 and NP ranks.
for np in 1 "$NP"; do
  must "$np" infer "$WORK/t.yaml" "$WORK/m.h5" "$WORK/coarse.txt" -o "$WORK/pp$np.h5" --samples 400 \
    --predictive --forward-samples 150 --seed 3 --json
done
same_data "$WORK/pp1.h5" "$WORK/pp$NP.h5" /samples /predictive
CHECKS=$((CHECKS + 1))
/usr/bin/python3 - "$WORK/pp1.h5" "$WORK/last.out" <<'PY' || fail "predictive band"
import json, sys, h5py
r = json.load(open(sys.argv[2]))["predictive"]
assert r["n_forward_samples"] == 150 and r["n_valid"] == 150, r
with h5py.File(sys.argv[1], "r") as f:
    p = f["predictive"]
    assert p.attrs["level"] == 0.9 and p.attrs["n_forward_samples"] == 150 and p.attrs["n_valid"] == 150
    m, s, lo, hi = (p["x/" + k][()] for k in ("mean", "std", "lower", "upper"))
    assert m.shape == (10,) and (lo < m).all() and (m < hi).all() and (s > 0.25).all(), (m, s, lo, hi)
    assert abs(p["x"].attrs["coverage"] - r["coverage"]) < 1e-5
PY
expect 2 "forward-samples" "$NP" infer "$WORK/t.yaml" "$WORK/m.h5" "$WORK/coarse.txt" -o "$WORK/x.h5" \
  --samples 100 --predictive --forward-samples 200
absent "$WORK/x.h5"
finish
