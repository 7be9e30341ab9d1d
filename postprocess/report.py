#!/usr/bin/python3
"""Figures for an exosbi run directory, and an index.html that shows them.

    /usr/bin/python3 postprocess/report.py DIR

Reads DIR/model.h5 (training curves), DIR/sbc.h5 (rank histograms, coverage)
and DIR/posterior.h5 (marginals and corner plot); a missing file is skipped.
Needs only Debian's python3-h5py and python3-matplotlib.
"""
import html
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
    ax.plot([0, 1], [0, 1], color="grey", ls="--", label="ideal")
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
    if os.path.exists(post):
        cap = posterior_figures(post, os.path.join(run, "posterior_corner.png"))
        figs.append(("posterior_corner.png", "Posterior", cap))
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
