"""serve's throughput-latency curve (matplotlib, an optional extra: `pip install symcost[plot]`)."""

from __future__ import annotations

from ..extras import pyplot


def plot_curve(result, path: str) -> None:
    """Decode tokens/s per GPU against TPOT, one point per batch: the roofline bounds, and the predictions
    where an efficiency entry gave them (the same batches at their predicted TPOT)."""
    plt = pyplot()
    rows, replica = result.numbers["curve"], result.serving.replica
    fig, ax = plt.subplots(figsize=(6, 4.5))
    lines = [("tpot_seconds", "bound")]
    if rows[0]["tpot_seconds_predicted"] is not None:
        lines.append(("tpot_seconds_predicted", "predicted"))
    for key, name in lines:
        x = [r[key] * 1e3 for r in rows]
        y = [r["batch"] / r[key] / replica for r in rows]
        ax.plot(x, y, marker="o", label=name)
        for r, xi, yi in zip(rows, x, y):
            ax.annotate(f"{r['batch']:,}", (xi, yi), textcoords="offset points", xytext=(4, -10), fontsize=8)
    ax.set(xlabel="TPOT (ms)", ylabel="decode tokens/s per GPU", yscale="log",
           title=f"{result.name}: {replica} x {result.hardware.name}, batch labelled")
    ax.legend()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
