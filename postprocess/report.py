#!/usr/bin/python3
"""Figures for an exosbi run directory, and an index.html that shows them.

    /usr/bin/python3 postprocess/report.py DIR

Reads DIR/model.h5 (training curves), DIR/sbc.h5 (rank histograms, coverage,
TARP), DIR/posterior.h5 (marginals and corner plot), DIR/ppc.h5 (posterior-
predictive band) and DIR/sensitivity.h5 (whitened Jacobian and Fisher
correlation heatmaps, singular spectra); a missing file is skipped.
Needs only Debian's python3-h5py and python3-matplotlib.
"""
import html
import json
import os
import sys

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy_free_stats import binomial_band  # noqa: E402


def names_units(f, d):
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in f["parameters/names"][()]] \
        if "parameters/names" in f else [f"θ{j}" for j in range(d)]
    units = [u.decode() if isinstance(u, bytes) else str(u) for u in f["parameters/units"][()]] \
        if "parameters/units" in f else [""] * d
    return names, units


def axis_label(name, unit):
    return f"{name} [{unit}]" if unit else name


def dataset_axes(task_json, name):
    """(x label, y label) of a dataset's points: the radiative-transfer
    families give wavelengths in um and transit depths or fluxes; other
    forward models only their dataset name."""
    try:
        task = json.loads(task_json)
        fm = task.get("forward_model", {})
        family = fm.get("family", "")
        ds = next(d for d in task.get("datasets", []) if d.get("name") == name)
    except (ValueError, TypeError, StopIteration, AttributeError):
        return "coordinate", f"{name} value"
    if family == "transmission":
        return "wavelength [µm]", f"{name}: transit depth (R_p/R_*)²"
    if family == "emission":
        out = fm.get("settings", {}).get("output", "flux")
        return "wavelength [µm]", (f"{name}: F_p/F_*" if out == "contrast" else f"{name}: flux [W m⁻² µm⁻¹]")
    return ("coordinate" if ds.get("coordinates") is not None else "index"), f"{name} value"


def training_curves(path, out):
    with h5py.File(path, "r") as f:
        if "history/epoch" not in f:
            return None
        ep = f["history/epoch"][()]
        tr = f["history/train_loss"][()]
        va = f["history/val_loss"][()]
        best = int(f.attrs.get("best_epoch", -1))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ep, tr, label="training")
    ax.plot(ep, va, label="validation")
    if best >= 0:
        ax.axvline(best + 1, color="grey", ls=":", label=f"best epoch ({best + 1})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss: mean −log q(θ | x) [nats]")
    ax.set_title("Training history")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return "Training and validation loss per epoch; the model kept is the one at the best epoch."


def sbc_figures(path, out_hist, out_cov):
    with h5py.File(path, "r") as f:
        hist = f["rank_histogram"][()]
        levels = f["coverage/levels"][()]
        per_par = f["coverage/per_parameter"][()]
        emp = f["coverage/empirical"][()]
        expected = f["coverage/expected"][()] if "coverage/expected" in f else None
        n_cases = int(f.attrs["n_cases"])
        n_samples = int(f.attrs["n_samples"])
        names, _ = names_units(f, hist.shape[0])
    d, nb = hist.shape
    cols = min(d, 5)
    rows = (d + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.2 * rows), squeeze=False)
    lo, hi = binomial_band(n_cases, 1.0 / nb, 0.99)
    for j in range(rows * cols):
        ax = axes[j // cols][j % cols]
        if j >= d:
            ax.axis("off")
            continue
        ax.axhspan(lo, hi, color="grey", alpha=0.25, lw=0)
        ax.bar(np.arange(nb), hist[j], width=1.0, color="C0", edgecolor="white")
        ax.set_title(names[j], fontsize=9)
        ax.set_xticks([0, nb - 1])
        ax.set_xticklabels(["0", str(n_samples)])
        if j % cols == 0:
            ax.set_ylabel("cases")
        if j // cols == rows - 1:
            ax.set_xlabel("rank of truth")
    fig.suptitle(f"SBC rank histograms ({n_cases} cases; band: 99% binomial range for uniform ranks)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_hist, dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", ls="--", label="nominal")
    if expected is not None:
        ax.plot(levels, expected, color="k", ls=":", marker="x",
                label=f"calibrated, {n_samples} draws (level·(n−1)/(n+1))")
    for j in range(d):
        ax.plot(levels, per_par[:, j], color="C0", alpha=0.25, marker=".", lw=0.8)
    ax.plot(levels, emp, color="C3", marker="o", label="all parameters")
    ax.set_xlabel("nominal credible level")
    ax.set_ylabel("empirical coverage")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title("Coverage of central credible intervals")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_cov, dpi=110)
    plt.close(fig)
    cov = ", ".join(f"{lv:.2f} → {c:.3f}" for lv, c in zip(levels, emp))
    return (f"Ranks of the true parameters among {n_samples} posterior draws; uniform when calibrated.",
            f"Coverage (nominal → empirical): {cov}.")


def tarp_figure(path, out):
    with h5py.File(path, "r") as f:
        if "tarp/alpha" not in f:
            return None
        alpha = f["tarp/alpha"][()]
        ecp = f["tarp/ecp"][()]
        dist = float(f.attrs.get("tarp_max_distance", np.max(np.abs(ecp - alpha))))
        n_cases = int(f.attrs["n_cases"])
    fig, ax = plt.subplots(figsize=(5, 4.5))
    # 99% Kolmogorov band of an empirical CDF of n_cases uniform values.
    band = 1.63 / np.sqrt(n_cases)
    ax.fill_between(alpha, np.clip(alpha - band, 0, 1), np.clip(alpha + band, 0, 1), color="grey", alpha=0.25,
                    lw=0, label="99% band of a calibrated posterior")
    ax.plot([0, 1], [0, 1], color="grey", ls="--", label="ideal")
    ax.plot(alpha, ecp, color="C3", lw=2, label=f"expected coverage (max distance {dist:.3f})")
    ax.set_xlabel("credibility level α")
    ax.set_ylabel("expected coverage probability")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(f"TARP coverage test ({n_cases} cases)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return ("TARP (Lemos et al. 2023): fraction of cases whose true parameter lies inside the posterior ball of "
            "credibility α around a random reference point; on the diagonal when calibrated, above when "
            f"under-confident, below when over-confident. Largest distance from the diagonal: {dist:.3f}.")


def predictive_figure(path, out, max_cases=4):
    with h5py.File(path, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in f["datasets/names"][()]]
        level = float(f.attrs["level"])
        sim = f["sim_index"][()]
        panels = []
        for name in names:
            g = f[f"datasets/{name}"]
            coord = g["coordinates"][()] if "coordinates" in g else None
            panels.append((name, coord, g["uncertainty"][()], g["observed"][()], g["mean"][()],
                           g["lower"][()], g["upper"][()]))
        summary = {k: f[f"summary/{k}"][()] for k in ("coverage", "mae_sigma", "crps")}
        task_json = f.attrs.get("task", "")
        if isinstance(task_json, bytes):
            task_json = task_json.decode()
    k = min(max_cases, len(sim))
    fig, axes = plt.subplots(len(panels), k, figsize=(3.4 * k, 2.8 * len(panels)), squeeze=False)
    for d, (name, coord, unc, obs, mean, lo, hi) in enumerate(panels):
        xs = coord if coord is not None else np.arange(obs.shape[1])
        xlab, ylab = dataset_axes(task_json, name) if coord is not None else ("point index", f"{name} value")
        # Break the band and the mean line across gaps in the grid (a detector gap, a saturated range).
        step = np.diff(xs)
        cut = np.where(step > 5 * np.median(step))[0] + 1 if len(xs) > 2 else np.array([], int)
        xb = np.insert(np.asarray(xs, dtype=float), cut, np.nan)

        def broken(v):
            return np.insert(np.asarray(v, dtype=float), cut, np.nan)
        for i in range(k):
            ax = axes[d][i]
            ax.fill_between(xb, broken(lo[i]), broken(hi[i]), color="C0", alpha=0.3, lw=0,
                            label=f"{level:.0%} predictive interval")
            ax.plot(xb, broken(mean[i]), color="C0", lw=1.2, label="predictive mean")
            ax.errorbar(xs, obs[i], yerr=unc, fmt=".", color="k", ms=4, lw=0.8, label="observed ±1σ")
            ax.set_title(f"{name}, case {sim[i]}", fontsize=9)
            ax.set_xlabel(xlab)
            if i == 0:
                ax.set_ylabel(ylab)
            ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Posterior predictive on held-out simulations", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    stats = "; ".join(f"{n}: coverage {summary['coverage'][j]:.3f}, MAE {summary['mae_sigma'][j]:.3g}σ, "
                      f"CRPS {summary['crps'][j]:.3g}" for j, n in enumerate(names))
    return (f"Predictive mean and central {level:.0%} interval of posterior draws pushed through the forward "
            f"model, against the observed values of the first {k} held-out cases. {stats}.")


def sensitivity_figures(path, out_heat, out_sv):
    with h5py.File(path, "r") as f:
        names, units = names_units(f, f["posterior/mean"].shape[0])
        labels = [s.decode() if isinstance(s, bytes) else str(s) for s in f["points/labels"][()]]
        jw = f["points/0/whitened_jacobian"][()]
        post_std = f["posterior/std"][()]
        corr = f["points/0/fisher_correlation"][()]
        svs = [f[f"points/{p}/singular_values"][()] for p in range(len(labels))]
        ranks = [int(f[f"points/{p}"].attrs["effective_rank"]) for p in range(len(labels))]
        ratio = f["aggregate/posterior_to_local_sigma_ratio"][()]
    d = len(names)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), gridspec_kw={"width_ratios": [1.3, 1]})
    # Per unit of each parameter the rows would differ by the parameters'
    # units; per posterior sigma they are comparable: how many sigma of the
    # data each point moves when the parameter moves by its posterior std.
    resp = jw * post_std[None, :]
    lim = np.max(np.abs(resp)) or 1.0
    im = axes[0].imshow(resp.T, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    axes[0].set_yticks(range(d))
    axes[0].set_yticklabels([axis_label(n, u) for n, u in zip(names, units)], fontsize=8)
    axes[0].set_xlabel("observed point index")
    axes[0].set_title(f"Whitened response to a 1σ posterior move, at the {labels[0]}", fontsize=9)
    fig.colorbar(im, ax=axes[0], label="change of the point, in σ of the data")
    im = axes[1].imshow(corr, cmap="RdBu_r", vmin=-1, vmax=1)
    axes[1].set_xticks(range(d))
    axes[1].set_xticklabels(names, rotation=45, ha="right", fontsize=8)
    axes[1].set_yticks(range(d))
    axes[1].set_yticklabels(names, fontsize=8)
    axes[1].set_title("Fisher correlation", fontsize=9)
    fig.colorbar(im, ax=axes[1], label="correlation")
    fig.tight_layout()
    fig.savefig(out_heat, dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 4))
    # Singular values below 1e-10 of the largest are numerically zero: drawn on that floor.
    top = max(float(np.max(sv)) for sv in svs if len(sv)) or 1.0
    floor = top * 1e-10
    for p, (lab, sv) in enumerate(zip(labels, svs)):
        ax.semilogy(np.arange(1, len(sv) + 1), np.maximum(sv, floor), marker="o", ms=4,
                    label=f"{lab} (rank {ranks[p]})")
    ax.axhline(floor, color="0.6", lw=0.8, ls=":")
    ax.set_ylim(floor / 3, top * 3)
    ax.set_xlabel("singular value index")
    ax.set_ylabel("singular value of the whitened Jacobian")
    ax.set_title("Singular spectra at the representative points")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_sv, dpi=110)
    plt.close(fig)
    rat = ", ".join(f"{n} {r:.2g}" for n, r in zip(names, ratio))
    return ("Local sensitivity: the whitened Jacobian scaled by the posterior std (how many σ of the data each "
            "observed point moves when a parameter moves by one posterior σ) and the Fisher correlation of the "
            "parameters.",
            f"Singular spectra; a sharp drop marks directions the data cannot constrain (values below 1e-10 of the "
            f"largest sit on the dotted floor). Posterior-to-local σ "
            f"ratio: {rat}.")


def posterior_figures(path, out_corner):
    with h5py.File(path, "r") as f:
        s = f["samples"][()]
        names, units = names_units(f, s.shape[1])
    d = s.shape[1]
    k = min(d, 8)
    fig, axes = plt.subplots(k, k, figsize=(1.7 * k + 1, 1.7 * k + 1), squeeze=False)
    for i in range(k):
        for j in range(k):
            ax = axes[i][j]
            if j > i:
                ax.axis("off")
                continue
            if i == j:
                ax.hist(s[:, i], bins=40, color="C0", histtype="stepfilled", alpha=0.7)
                med = np.median(s[:, i])
                q = np.quantile(s[:, i], [0.16, 0.84])
                ax.set_title(f"{names[i]} = {med:.3g}$^{{+{q[1] - med:.2g}}}_{{-{med - q[0]:.2g}}}$", fontsize=8)
                ax.set_yticks([])
            else:
                ax.hist2d(s[:, j], s[:, i], bins=40, cmap="Blues")
            if i == k - 1:
                ax.set_xlabel(axis_label(names[j], units[j]), fontsize=8)
            else:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(axis_label(names[i], units[i]), fontsize=8)
            elif j > 0:
                ax.set_yticklabels([])
            ax.tick_params(labelsize=7)
    extra = f" (first {k} of {d} parameters)" if d > k else ""
    fig.suptitle(f"Posterior: {s.shape[0]} samples{extra}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_corner, dpi=100)
    plt.close(fig)
    return "One- and two-dimensional marginals of the amortized posterior; titles give the median and 68% interval."


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    run = sys.argv[1]
    figs = []
    model = os.path.join(run, "model.h5")
    sbc = os.path.join(run, "sbc.h5")
    post = os.path.join(run, "posterior.h5")
    if os.path.exists(model):
        cap = training_curves(model, os.path.join(run, "training.png"))
        if cap:
            figs.append(("training.png", "Training", cap))
    if os.path.exists(sbc):
        c1, c2 = sbc_figures(sbc, os.path.join(run, "sbc_ranks.png"), os.path.join(run, "sbc_coverage.png"))
        figs.append(("sbc_ranks.png", "Simulation-based calibration", c1))
        figs.append(("sbc_coverage.png", "Coverage", c2))
        cap = tarp_figure(sbc, os.path.join(run, "sbc_tarp.png"))
        if cap:
            figs.append(("sbc_tarp.png", "TARP expected coverage", cap))
    if os.path.exists(post):
        cap = posterior_figures(post, os.path.join(run, "posterior_corner.png"))
        figs.append(("posterior_corner.png", "Posterior", cap))
    ppc = os.path.join(run, "ppc.h5")
    if os.path.exists(ppc):
        cap = predictive_figure(ppc, os.path.join(run, "predictive.png"))
        figs.append(("predictive.png", "Posterior predictive", cap))
    sens = os.path.join(run, "sensitivity.h5")
    if os.path.exists(sens):
        c1, c2 = sensitivity_figures(sens, os.path.join(run, "sensitivity_heatmaps.png"),
                                     os.path.join(run, "sensitivity_singular_values.png"))
        figs.append(("sensitivity_heatmaps.png", "Local sensitivity", c1))
        figs.append(("sensitivity_singular_values.png", "Singular spectra", c2))
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>exosbi run</title>",
             "<style>body{font-family:sans-serif;max-width:1000px;margin:auto}img{max-width:100%}</style>",
             f"</head><body><h1>exosbi run: {html.escape(os.path.abspath(run))}</h1>"]
    for fn, title, cap in figs:
        parts.append(f"<h2>{html.escape(title)}</h2><img src='{fn}' alt='{html.escape(title)}'>"
                     f"<p>{html.escape(cap)}</p>")
    parts.append("</body></html>")
    with open(os.path.join(run, "index.html"), "w") as f:
        f.write("\n".join(parts))
    print(f"wrote {len(figs)} figures and {os.path.join(run, 'index.html')}")


if __name__ == "__main__":
    main()
