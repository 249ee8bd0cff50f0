"""Plots of fits and iso-FLOP curves (matplotlib, an optional extra: `pip install symcost[plot]`)."""

from __future__ import annotations

import numpy as np

from ..extras import pyplot


def plot_fit(runs, fit, law, path: str) -> None:
    """Observed against predicted loss, runs coloured by tokens per parameter."""
    plt = pyplot()
    predicted = law.loss(runs.params, runs.tokens)
    fig, ax = plt.subplots(figsize=(6, 5))
    points = ax.scatter(predicted, runs.loss, c=np.log10(runs.tokens / runs.params), cmap="viridis", s=18)
    lo, hi = float(min(predicted.min(), runs.loss.min())), float(max(predicted.max(), runs.loss.max()))
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1)
    v = fit.values
    ax.set(xlabel="predicted loss", ylabel="observed loss",
           title=f"L = {v['E']:.3g} + {v['A']:.3g}/N^{v['alpha']:.3g} + {v['B']:.3g}/D^{v['beta']:.3g}")
    fig.colorbar(points, label="log10 tokens per parameter")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_isoflop(optima, path: str) -> None:
    """Predicted loss against the free dim's size at each budget, the optimum marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    for o in optima:
        sizes, loss = np.array(o.curve["sizes"]), np.array(o.curve["loss"])
        ok = np.isfinite(loss) & (loss < np.nanmin(loss[np.isfinite(loss)]) + 1.0)
        ax.plot(sizes[ok], loss[ok], label=f"C = {o.flops:.2g}")
        ax.plot([o.exact.size], [o.exact.loss], "o", color="black")
    ax.set(xscale="log", xlabel=optima[0].unknown, ylabel=f"predicted loss ({optima[0].law.name})",
           title=f"{optima[0].spec}: iso-FLOP curves, exact training compute")
    ax.legend()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
