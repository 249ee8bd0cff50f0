"""serve's throughput-latency curve (matplotlib, an optional extra: `pip install symcost[plot]`)."""

from __future__ import annotations

from ..extras import pyplot


def plot_curve(result, path: str) -> None:
    """Decode tokens/s per GPU against TPOT, one point per batch (both roofline bounds)."""
    plt = pyplot()
    rows = result.numbers["curve"]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    x = [r["tpot_seconds"] * 1e3 for r in rows]
    y = [r["tokens_per_second_per_gpu"] for r in rows]
    ax.plot(x, y, marker="o")
    for r, xi, yi in zip(rows, x, y):
        ax.annotate(f"{r['batch']:,}", (xi, yi), textcoords="offset points", xytext=(4, -10), fontsize=8)
    ax.set(xlabel="TPOT bound (ms)", ylabel="decode tokens/s per GPU, bound", yscale="log",
           title=f"{result.name}: {result.serving.replica} x {result.hardware.name}, batch labelled")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
