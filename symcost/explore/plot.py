"""Plots of sweeps (matplotlib, an optional extra: `pip install symcost[plot]`)."""

from __future__ import annotations

import itertools

import numpy as np

from .sweep import Sweep


def _log_axis(values) -> bool:
    """Log scale when the values span more than a decade."""
    values = [v for v in values if v > 0]
    return len(values) > 1 and max(values) / min(values) > 10


def plot_sweep(result: Sweep, path: str, metrics, stack: bool = False):
    """Each metric against the first varied dim, one line per combination of the others;
    with `stack`, each component's share of the first metric as a stacked area."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    names = list(result.varied)
    x_name, others = names[0], names[1:]
    panels = list(metrics) + (["shares"] if stack else [])
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 3.2 * len(panels)), squeeze=False)
    cols = result.columns
    combos = list(itertools.product(*(result.varied[o] for o in others))) or [()]
    for ax, metric in zip(axes[:, 0], panels):
        if metric == "shares":
            _shares(ax, result, x_name, metrics[0])
            continue
        for combo in combos:
            mask = np.ones(result.points, dtype=bool)
            for name, value in zip(others, combo):
                mask &= cols[name] == value
            label = ", ".join(f"{n}={v}" for n, v in zip(others, combo)) or metric
            ax.plot(cols[x_name][mask], cols[metric][mask].astype(float), marker=".", label=label)
        ax.set_ylabel(f"{metric} ({result.convention})" if metric != "params" else metric)
        ax.set_xlabel(x_name)
        if _log_axis(result.varied[x_name]):
            ax.set_xscale("log")
        if _log_axis(cols[metric].astype(float)):
            ax.set_yscale("log")
        ax.legend(fontsize="small")
    fig.suptitle(result.spec.name)
    fig.tight_layout()
    fig.savefig(path, format="png", bbox_inches="tight")
    plt.close(fig)
    return fig


def _shares(ax, result: Sweep, x_name: str, metric: str) -> None:
    """Component shares along x, the other varied dims at their first value."""
    prefix = "component:"
    keys = [k for k in result.columns if k.startswith(prefix) and k.endswith(":" + metric)]
    mask = np.ones(result.points, dtype=bool)
    for name, values in result.varied.items():
        if name != x_name:
            mask &= result.columns[name] == values[0]
    x = result.columns[x_name][mask]
    totals = result.columns[metric][mask].astype(float)
    shares = [result.columns[k][mask].astype(float) / np.where(totals == 0, 1, totals) for k in keys]
    ax.stackplot(x, *shares, labels=[k[len(prefix):-len(metric) - 1] for k in keys])
    ax.set_xlabel(x_name)
    fixed = ", ".join(f"{n}={v[0]}" for n, v in result.varied.items() if n != x_name)
    ax.set_ylabel(f"share of {metric}" + (f"\n({fixed})" if fixed else ""))
    if _log_axis(result.varied[x_name]):
        ax.set_xscale("log")
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1, 1))
