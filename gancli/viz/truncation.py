"""The truncation curve `gan eval truncation=a,b,c plot=curve.png` draws: the distance metric
(FID) on the left axis, the shares (precision, recall, class accuracy) on the right, against
the threshold, which falls from left to right as the trick gets stronger."""

from __future__ import annotations

from pathlib import Path

from gancli.metrics.truncation_curve import curve_columns
from gancli.viz.common import pyplot, save_figure

SHARES = ("precision", "recall", "class_accuracy")  # name endings plotted on the 0..1 axis


def plot_truncation_curve(result: dict, out: str | Path, dpi: int = 120) -> Path:
    plt = pyplot()
    rows = result["curve"]
    x = [row["truncation"] for row in rows]
    columns = curve_columns(result)
    shares = [c for c in columns if c.endswith(SHARES)]
    distances = [c for c in columns if c not in shares]
    fig, left = plt.subplots(figsize=(6.4, 4.2))
    right = left.twinx()
    for i, name in enumerate(distances):
        left.plot(x, [row[name] for row in rows], "o-", color=f"C{i}", label=name)
    for j, name in enumerate(shares, start=len(distances)):
        right.plot(x, [row[name] for row in rows], "s--", color=f"C{j}", label=name)
    left.set_xlabel("truncation threshold (|z| redrawn above it)")
    left.set_ylabel(", ".join(distances) or "distance")
    right.set_ylabel("share")
    right.set_ylim(0, 1.02)
    left.invert_xaxis()  # stronger truncation to the right
    left.grid(alpha=0.3)
    handles = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = left.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    left.legend(handles, labels, loc="center left", fontsize="small")
    left.set_title(f"truncation curve: {Path(result['fake']['path']).parent.parent.name}, "
                   f"{result['n_fake']} samples per value", fontsize="medium")
    fig.tight_layout()
    return save_figure(fig, out, dpi)
