"""`gan plot`: a run's curves from metrics.jsonl (several runs overlaid), and samples.gif, the
timelapse of its fixed-noise sample grids."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from gancli.errors import ConfigError, GanError
from gancli.viz.common import pyplot, save_figure

# panel title -> the metrics.jsonl keys it shows
PANELS = {
    "losses": ("d_loss", "g_loss", "d_penalty"),
    "D(x) and D(G(z)) (mean raw scores)": ("d_real", "d_fake"),
    "gradient norms (before clipping)": ("grad_norm_d", "grad_norm_g"),
}
NOT_PLOTTED = {"step", "steps_per_s", "lr_g", "lr_d", "skipped_updates"}
GIF_NAME = "samples.gif"


@dataclass
class PlotArgs:
    out: str = "curves.png"  # the figure of all runs' curves
    gif: bool = True  # also write <run>/samples.gif for each run
    gif_ms: int = 600  # milliseconds per frame

    def __post_init__(self):
        if self.gif_ms <= 0:
            raise ConfigError(f"gif_ms must be > 0, got {self.gif_ms}")


def read_metrics(run_dir: str | Path) -> list[dict]:
    """Every metrics.jsonl record of a run, in file order."""
    path = Path(run_dir) / "metrics.jsonl"
    if not Path(run_dir).is_dir():
        raise GanError(f"no run directory at {run_dir}")
    records = []
    if path.is_file():
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not records:
        raise GanError(f"{run_dir} has no metrics yet ({path} is missing or empty); a run "
                       f"logs every train.log_every steps")
    return records


def series(records: list[dict]) -> dict[str, tuple[list[int], list[float]]]:
    """key -> (steps, values) for every numeric key; the last record of a step wins."""
    out: dict[str, dict[int, float]] = {}
    for record in records:
        for key, value in record.items():
            if key in NOT_PLOTTED or isinstance(value, bool) or \
                    not isinstance(value, (int, float)):
                continue
            out.setdefault(key, {})[int(record["step"])] = float(value)
    return {k: (sorted(v), [v[s] for s in sorted(v)]) for k, v in out.items()}


def panel_keys(all_series: list[dict]) -> dict[str, list[str]]:
    """Panels that have data: the fixed ones, then other training terms (extra losses) and
    one panel per evaluation metric."""
    present = list(dict.fromkeys(k for s in all_series for k in s))
    panels = {title: [k for k in keys if k in present] for title, keys in PANELS.items()}
    placed = {k for keys in PANELS.values() for k in keys}
    for key in present:
        if key not in placed:
            panels[key] = [key]
    return {title: keys for title, keys in panels.items() if keys}


def labels_for(runs: list[Path]) -> list[str]:
    names = [r.resolve().name for r in runs]
    if len(set(names)) < len(names):
        names = [str(r) for r in runs]
    return names


def curves_figure(runs: list[Path]):
    plt = pyplot()
    all_series = [series(read_metrics(r)) for r in runs]
    panels = panel_keys(all_series)
    names = labels_for(runs)
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    colors = plt.get_cmap("tab10")
    styles = ("-", "--", ":", "-.")
    for ax, (title, keys) in zip(axes.flat, panels.items(), strict=False):
        for r, (name, data) in enumerate(zip(names, all_series, strict=True)):
            for j, key in enumerate(keys):
                if key not in data:
                    continue
                steps, values = data[key]
                label = key if len(runs) == 1 else f"{name}: {key}"
                if len(keys) == 1 and len(runs) > 1:
                    label = name
                ax.plot(steps, values, styles[j % len(styles)], color=colors(r % 10),
                        marker="o" if len(steps) < 20 else None, markersize=3, label=label,
                        linewidth=1.2)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(" vs ".join(names) if len(names) > 1 else names[0])
    fig.tight_layout()
    return fig


def draw_curves(runs: list[Path], out: str | Path) -> Path:
    return save_figure(curves_figure(runs), out, dpi=100)


def sample_grids(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, file) of the run's fixed-noise grids, in step order."""
    found = []
    for path in (run_dir / "samples").glob("step_*.png"):
        try:
            found.append((int(path.stem.split("_")[1]), path))
        except (IndexError, ValueError):
            continue
    return sorted(found)


def write_gif(run_dir: Path, out: Path | None = None, ms: int = 600) -> Path:
    """The sample grids, one frame each, with the step written above; the last frame held."""
    from PIL import Image, ImageDraw

    grids = sample_grids(run_dir)
    if not grids:
        raise GanError(f"{run_dir} has no sample grids yet (samples/step_*.png)")
    frames = []
    for step, path in grids:
        grid = Image.open(path).convert("RGB")
        frame = Image.new("RGB", (grid.width, grid.height + 16), "white")
        frame.paste(grid, (0, 16))
        ImageDraw.Draw(frame).text((4, 2), f"step {step}", fill="black")
        frames.append(frame)
    out = out or run_dir / GIF_NAME
    durations = [ms] * (len(frames) - 1) + [ms * 3]
    frames[0].save(out, save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return out


def run_plot(runs: list[str | Path], args: PlotArgs) -> list[Path]:
    if not runs:
        raise ConfigError("usage: gan plot RUN [RUN...] [out=curves.png] [gif=true]")
    runs = [Path(r) for r in runs]
    written = [draw_curves(runs, args.out)]
    if args.gif:
        written += [write_gif(r, ms=args.gif_ms) for r in runs if sample_grids(r)]
    return written
