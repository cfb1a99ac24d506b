"""`gan report`: one self-contained HTML file for a run (every image inlined as base64): the
command and resolved config, the curves, sample grids over training, the last grid, the
metrics, and optionally the t-SNE map. It opens in any browser with no server."""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from omegaconf import OmegaConf

from gancli.errors import ConfigError, GanError
from gancli.viz.common import Features, checkpoint_path, pyplot, run_name
from gancli.viz.curves import curves_figure, read_metrics, sample_grids

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.6em;
     border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th { background: #f6f8fa; } td:first-child, th:first-child { text-align: left; }
.grids { display: flex; flex-wrap: wrap; gap: 1em; } figure { margin: 0; }
figcaption { font-size: 0.85em; color: #555; text-align: center; }
img.pixel { image-rendering: pixelated; } img.wide { max-width: 100%; }
.meta { color: #666; font-size: 0.9em; }
"""


@dataclass
class ReportArgs:
    out: str = "report.html"  # the self-contained HTML file
    grids: int = 4  # sample grids shown from over the run (evenly spaced), besides the last
    tsne: bool = False  # add a t-SNE map of real vs generated samples (gan viz)
    tsne_n: int = 1000  # real (and as many generated) samples in the t-SNE map
    features: Features = Features.classifier  # for the t-SNE map
    device: str = "auto"  # auto, cpu or cuda (for the t-SNE map)

    def __post_init__(self):
        self.features = Features(self.features)
        if self.grids < 0:
            raise ConfigError(f"grids must be >= 0, got {self.grids}")
        if self.tsne_n < 10:
            raise ConfigError(f"tsne_n must be >= 10, got {self.tsne_n}")
        if not self.out.endswith((".html", ".htm")):
            raise ConfigError(f"out={self.out}: the report is an .html file")


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def figure_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    pyplot().close(fig)
    return buffer.getvalue()


def command_of(run_dir: Path) -> str:
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return "(not recorded: the run has no .hydra/overrides.yaml)"
    overrides = OmegaConf.to_container(OmegaConf.load(path)) or []
    return " ".join(["gan train", *map(str, overrides)])


def config_text(run_dir: Path) -> str:
    path = run_dir / ".hydra" / "config.yaml"
    if path.is_file():
        return path.read_text()
    ckpt = run_dir / "checkpoints" / "last.pt"
    if ckpt.is_file():
        from gancli.training.checkpoint import load_checkpoint

        return OmegaConf.to_yaml(OmegaConf.create(load_checkpoint(ckpt)["config"]))
    return "(no .hydra/config.yaml and no checkpoint)"


def _value(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    if isinstance(v, list):
        return " ".join(_value(x) for x in v)
    return html.escape(str(v))


def metrics_tables(records: list[dict]) -> str:
    """The last logged values, and every evaluation record (those without d_loss), by step."""
    last_step = records[-1]["step"]
    final: dict = {}
    for record in records:
        if record.get("step") == last_step:
            final.update(record)
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{_value(v)}</td></tr>"
                   for k, v in final.items() if k != "step")
    out = f"<p>At step {last_step}:</p><table><tr><th>metric</th><th>value</th></tr>{rows}</table>"
    evals = [r for r in records if "d_loss" not in r]
    if evals:
        keys = list(dict.fromkeys(k for r in evals for k in r if k != "step"))
        head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
        body = "".join("<tr><td>" + str(r["step"]) + "</td>"
                       + "".join(f"<td>{_value(r.get(k, ''))}</td>" for k in keys) + "</tr>"
                       for r in evals)
        out += (f"<p>Evaluations over training:</p><table><tr><th>step</th>{head}</tr>"
                f"{body}</table>")
    return out


def picked_grids(run_dir: Path, count: int) -> list[tuple[int, Path]]:
    """`count` grids spread evenly over the run, the last one excluded (shown on its own)."""
    grids = sample_grids(run_dir)[:-1]
    if count == 0 or not grids:
        return []
    if len(grids) <= count:
        return grids
    return [grids[round(i * (len(grids) - 1) / (count - 1))] if count > 1 else grids[0]
            for i in range(count)]


def _img(path_or_png, caption: str, css: str, width: int | None = None) -> str:
    png = path_or_png.read_bytes() if isinstance(path_or_png, Path) else path_or_png
    size = f' width="{width}"' if width else ""
    return (f'<figure><img class="{css}" src="{data_uri(png)}"{size} alt="{caption}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def build_report(run_dir: str | Path, args: ReportArgs) -> str:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise GanError(f"no run directory at {run_dir}")
    records = read_metrics(run_dir)  # a run that has logged nothing has nothing to report
    name = run_name(run_dir)
    parts = [f"<h1>{html.escape(name)}</h1>",
             f'<p class="meta">{html.escape(str(run_dir.resolve()))}; step '
             f'{records[-1]["step"]}; report written '
             f'{datetime.now(UTC):%Y-%m-%d %H:%M} UTC by gan report</p>',
             "<h2>Command</h2>", f"<pre>{html.escape(command_of(run_dir))}</pre>"]
    grids = sample_grids(run_dir)
    if grids:
        step, last = grids[-1]
        parts += ["<h2>Samples at the last grid</h2>",
                  _img(last, f"step {step} (fixed noise)", "pixel", 480)]
    parts += ["<h2>Curves</h2>", _img(figure_png(curves_figure([run_dir])), "from metrics.jsonl",
                                      "wide")]
    picked = picked_grids(run_dir, args.grids)
    if picked:
        parts += ["<h2>Samples over training</h2>", '<div class="grids">',
                  *(_img(p, f"step {s}", "pixel", 240) for s, p in picked), "</div>"]
    parts += ["<h2>Metrics</h2>", metrics_tables(records)]
    if args.tsne:
        from gancli.viz.maps import MapArgs, compute_map, map_figure

        result = compute_map(MapArgs(ckpt=str(checkpoint_path(run_dir)), method="tsne",
                                     features=args.features, n=args.tsne_n, device=args.device))
        parts += ["<h2>t-SNE map: real vs generated</h2>",
                  _img(figure_png(map_figure(result)),
                       f"{args.tsne_n} real and {args.tsne_n} generated samples, "
                       f"{result['features']}", "wide")]
    parts += ["<h2>Resolved config</h2>", f"<pre>{html.escape(config_text(run_dir))}</pre>"]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>gan report: {html.escape(name)}</title><style>{STYLE}</style></head>"
            "<body>\n" + "\n".join(parts) + "\n</body></html>\n")


def run_report(run_dir: str | Path, args: ReportArgs) -> Path:
    text = build_report(run_dir, args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out




CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars")


def browser_screenshot(page: str | Path, png: str | Path, width: int = 1200,
                       height: int = 2400, browser: str = "chromium",
                       timeout: float = 120) -> Path:
    """A PNG of `page` as headless Chromium renders it (a fresh, empty profile each time)."""
    import shutil
    import subprocess
    import tempfile

    exe = shutil.which(browser)
    if exe is None:
        raise GanError(f"{browser} is not installed (Debian: apt-get install -y chromium)")
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}",
             f"--window-size={width},{height}", Path(page).resolve().as_uri()],
            capture_output=True, text=True, timeout=timeout)
    if not png.is_file():
        raise GanError(f"{browser} wrote no screenshot (exit {done.returncode}): "
                       f"{done.stderr.strip().splitlines()[-1:] or ''}")
    return png
