#!/usr/bin/python3
"""A figure of simulated spectra from an exosbi corpus.

    /usr/bin/python3 postprocess/plot_corpus.py CORPUS.h5 OUT.png [--n 20] [--split train]
                     [--seed 0] [--color-by NAME]

Draws N spectra of one split, picked at random (with SEED) among its rows,
against wavelength, one panel per dataset that has wavelengths (photometric
datasets: one point per band, the bar spanning the band), with the
axis named after the forward-model family stored in the corpus (transit
depth for `transmission`, planet flux or contrast for `emission`).  Each
spectrum is coloured by a parameter (by default a cloud-top pressure when
the task has one).  The absorption bands of the molecules the task lists
are marked at the top.  Needs only Debian's python3-h5py and
python3-matplotlib.
"""
import argparse
import json
import sys

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# Band centres [um] of the strongest infrared bands (HITRAN band origins).
BANDS = {
    "H2O": [0.94, 1.14, 1.38, 1.87, 2.7, 6.3],
    "CO2": [2.0, 2.7, 4.3, 15.0],
    "CO": [2.35, 4.65],
    "CH4": [1.67, 2.3, 3.3, 7.7],
    "NH3": [1.5, 2.0, 3.0, 6.1, 10.5],
    "Na": [0.589],
    "K": [0.767],
}


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def spectrum_axis(task):
    """The y label and the factor that brings corpus values onto it."""
    fm = task.get("forward_model", {})
    family = fm.get("family", "")
    settings = fm.get("settings", {}) or {}
    if family == "transmission":
        return "transit depth $(R_\\mathrm{T}/R_\\star)^2$ [%]", 100.0
    if family == "emission":
        if settings.get("output") == "contrast":
            return "planet-to-star contrast $F_\\mathrm{p}/F_\\star$ [ppm]", 1e6
        return "planet flux $F_\\lambda$ at the observer [W m$^{-2}$ µm$^{-1}$]", 1.0
    return "simulated observation", 1.0


def species_of(task):
    names = []
    for s in (task.get("forward_model", {}).get("settings", {}) or {}).get("species", []) or []:
        names.append(s if isinstance(s, str) else s.get("name", ""))
    return names


def band_extents(task, name):
    """(centre, half width) [um] of each band of photometric dataset `name`
    from the task's settings, or None: a top-hat [lo, hi] directly, a filter
    curve when its file can be found (absolute, or relative to the current
    directory) as its transmission-weighted centroid and its support."""
    ds = ((task.get("forward_model", {}).get("settings", {}) or {}).get("datasets", {}) or {}).get(name, {})
    bands = ds.get("bands") if isinstance(ds, dict) else None
    if not isinstance(bands, list):
        return None
    out = []
    for b in bands:
        if isinstance(b, list) and len(b) == 2:
            out.append((0.5 * (b[0] + b[1]), 0.5 * (b[1] - b[0])))
            continue
        try:
            curve = np.loadtxt(b["filter"], comments="#", delimiter=None, usecols=(0, 1), ndmin=2)
            lam, tr = curve[:, 0], curve[:, 1]
            on = np.nonzero(tr > 0)[0]
            out.append((float(np.sum(lam * tr) / np.sum(tr)), 0.5 * float(lam[on[-1]] - lam[on[0]])))
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None
    return out


def with_gaps(x, y):
    """Break the line where the wavelength spacing jumps (detector gaps)."""
    if len(x) < 3:
        return x, y
    dx = np.diff(x)
    cut = np.where(dx > 5.0 * np.median(dx))[0]
    return np.insert(x, cut + 1, np.nan), np.insert(y, cut + 1, np.nan)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus")
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=20, help="number of spectra (default 20)")
    ap.add_argument("--split", default="train", help="train, validation or test (default train)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random pick (default 0)")
    ap.add_argument("--color-by", default=None, help="parameter that colours the spectra")
    a = ap.parse_args(argv)

    with h5py.File(a.corpus, "r") as f:
        if text(f.attrs.get("format", "")) != "exosbi-corpus":
            sys.exit(f"{a.corpus}: not an exosbi corpus (format attribute '{text(f.attrs.get('format', ''))}')")
        task = json.loads(text(f.attrs["task"]))
        if a.split not in f or "theta" not in f[a.split]:
            sys.exit(f"{a.corpus}: no split '{a.split}'")
        theta = f[a.split]["theta"]
        rows = theta.shape[0]
        if rows == 0:
            sys.exit(f"{a.corpus}: the {a.split} split is empty")
        pick = np.sort(np.random.default_rng(a.seed).choice(rows, size=min(a.n, rows), replace=False))
        theta = theta[pick, :]
        params = task.get("parameters", [])
        names = [p["name"] for p in params]
        panels = []
        for d in task.get("datasets", []):
            g = f["datasets"][d["name"]]
            x = f[a.split]["x"][d["name"]][pick, :]
            bands = band_extents(task, d["name"])
            if bands is not None:
                panels.append((d["name"], np.array([c for c, _ in bands]), x, np.array([h for _, h in bands])))
                continue
            if "coordinates" not in g:
                print(f"plot_corpus: dataset '{d['name']}' has no wavelengths; not drawn", file=sys.stderr)
                continue
            panels.append((d["name"], g["coordinates"][()], x, None))
    if not panels:
        sys.exit(f"{a.corpus}: no dataset with wavelengths to draw")

    ylabel, scale = spectrum_axis(task)
    color_by = a.color_by
    if color_by is None:
        color_by = next((n for n in names if "cloud" in n.lower() and n.lower().startswith("log_p")), None)
    if color_by is not None and color_by not in names:
        sys.exit(f"--color-by {color_by}: no such parameter (parameters: {', '.join(names)})")
    cmap = plt.get_cmap("viridis")
    if color_by is not None:
        j = names.index(color_by)
        lo, hi = params[j].get("low", theta[:, j].min()), params[j].get("high", theta[:, j].max())
        norm = matplotlib.colors.Normalize(vmin=lo, vmax=hi)
        colors = [cmap(norm(v)) for v in theta[:, j]]
    else:
        colors = [cmap(i / max(1, len(pick) - 1)) for i in range(len(pick))]

    fig, axes = plt.subplots(1, len(panels), figsize=(7.5 * len(panels), 4.6), squeeze=False)
    for ax, (name, lam, x, half) in zip(axes[0], panels):
        order = np.argsort(lam)
        for r in range(x.shape[0]):
            if half is not None:
                # Photometry: one point per band, the bar spans the band.
                ax.errorbar(lam, scale * x[r], xerr=half, fmt="o", ms=3, lw=0.8, color=colors[r], alpha=0.9)
                continue
            xs, ys = with_gaps(lam[order], scale * x[r, order])
            ax.plot(xs, ys, lw=0.9, color=colors[r], alpha=0.9)
        ax.set_xlabel("wavelength λ [µm]")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{task.get('name', '')}: {len(pick)} simulated spectra ({a.split} split, dataset '{name}')",
                     fontsize=9)
        # Mark only the bands that fall on the data, not in a detector gap.
        spacing = np.median(np.diff(np.sort(lam))) if len(lam) > 1 else 0.1
        trans = matplotlib.transforms.blended_transform_factory(ax.transData, ax.transAxes)
        marks = {}
        for sp in species_of(task):
            for b in BANDS.get(sp, []):
                near = np.abs(lam - b) <= half if half is not None else np.abs(lam - b) <= 2.0 * spacing
                if np.any(near):
                    marks.setdefault(b, []).append(sp)
        for b, sps in sorted(marks.items()):
            ax.axvline(b, color="grey", lw=0.5, ls=":", zorder=0)
            ax.text(b, 0.985, "/".join(sps), transform=trans, rotation=90, ha="right", va="top", fontsize=7,
                    color="dimgrey")
    if color_by is not None:
        unit = params[names.index(color_by)].get("unit", "")
        sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
        cb = fig.colorbar(sm, ax=axes[0].tolist(), pad=0.01)
        cb.set_label(f"{color_by} [{unit}]" if unit else color_by)
    fig.savefig(a.out, dpi=130, bbox_inches="tight")
    print(f"wrote {a.out}: {len(pick)} spectra of {rows} in the {a.split} split")


if __name__ == "__main__":
    main(sys.argv[1:])
