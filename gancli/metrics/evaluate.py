"""`gan eval`: compare generated images with real ones by FID, KID, IS and precision/recall.

    fake images ─┐                      ┌─ fid (Fréchet distance of Gaussian fits)
                 ├─ extractor features ─┼─ kid, precision / recall
    real images ─┘  (real ones cached)  └─ is (fake logits), class coverage (mnist extractor)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gancli.config import comma_separated_numbers, require_non_negative, require_positive
from gancli.errors import ConfigError, GanError
from gancli.metrics import cache
from gancli.metrics.checks import require_finite
from gancli.metrics.extractors import Extractor, ExtractorName, build_extractor, extract
from gancli.metrics.frechet import frechet_distance, gaussian_stats
from gancli.metrics.inception_score import inception_score
from gancli.metrics.kid import kernel_inception_distance, used_subset_size
from gancli.metrics.precision_recall import precision_recall
from gancli.metrics.sources import CheckpointSource, DatasetSource, Source, open_source
from gancli.metrics.translation import evaluate_translation
from gancli.paths import check_writable, expand_user_path, write_error
from gancli.translate import is_translation_run

METRICS = ("fid", "kid", "is", "pr")
FAKE_TO_UINT8 = "round((clamp(x, -1, 1) + 1) * 127.5), as gan sample writes PNG files"


@dataclass
class MetricSettings:
    kid_subsets: int = 100  # KID: random subsets averaged
    kid_subset_size: int = 1000  # KID: images per subset
    is_splits: int = 10  # IS: splits of the generated images
    pr_k: int = 3  # precision/recall: neighbours defining each k-NN ball
    seed: int = 0  # KID subsets

    def describe(self, chosen: list[str]) -> dict:
        out = {}
        if "kid" in chosen:
            out["kid"] = {"kernel": "(x.y/d + 1)^3", "estimator": "unbiased MMD^2",
                          "subsets": self.kid_subsets, "subset_size": self.kid_subset_size,
                          "seed": self.seed}
        if "is" in chosen:
            out["is"] = {"splits": self.is_splits, "split": "consecutive chunks"}
        if "pr" in chosen:
            out["pr"] = {"method": "Kynkaanniemi et al. 2019 k-NN balls", "k": self.pr_k}
        return out


@dataclass
class EvalArgs:
    ckpt: str | None = None  # a checkpoint (or run folder); the default: the latest run
    real: str | None = None  # dataset name, image folder, or .npz (default: the run's dataset)
    fake: str | None = None  # image folder, .npz, or checkpoint (.pt)
    metrics: list[str] = field(default_factory=list)  # set by --fid --kid --is --pr
    n: int = 10000  # images from each side (all of a smaller folder, file or dataset)
    extractor: ExtractorName = ExtractorName.inception  # inception (standard FID); mnist: offline
    inception_weights: str | None = None  # default: torch hub's cache, downloaded if missing
    out: str | None = None  # write the results as JSON here
    batch_size: int = 100  # images per forward pass of the extractor
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 0  # latent noise, subset choices
    ema: bool = True  # use the EMA generator when the checkpoint has one
    num_workers: int | None = None  # image-file readers; default min(8, CPUs)
    cache_dir: str | None = None  # default $GANCLI_CACHE or ~/.cache/gancli
    no_cache: bool = False  # recompute the real statistics instead of reading the cache
    kid_subsets: int = 100  # KID: random subsets averaged
    kid_subset_size: int = 1000  # KID: images per subset
    is_splits: int = 10  # IS: splits of the generated images
    pr_k: int = 3  # precision/recall: neighbours defining each k-NN ball
    # a checkpoint's truncation curve: "2.0,1.0,0.5" measures FID, precision, recall (and
    # class accuracy by the MNIST classifier for conditional models) at each value
    truncation: str | None = None
    plot: str | None = None  # with truncation=: draw the curve into this .png
    # ckpt=: G's BatchNorm statistics re-estimated from this many generated batches first
    # (as gan sample standing_stats=; at each truncation value); 0: training's averages
    standing_stats: int = 0

    def __post_init__(self):
        for key in ("ckpt", "real", "fake", "inception_weights", "out", "cache_dir", "plot"):
            setattr(self, key, expand_user_path(getattr(self, key)))
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown:
            raise ConfigError(f"unknown metric {unknown[0]}; choose from --"
                              + " --".join(METRICS))
        for key in ("n", "batch_size", "kid_subsets", "kid_subset_size", "is_splits", "pr_k"):
            require_positive(key, getattr(self, key))
        require_non_negative("standing_stats", self.standing_stats, " (0 is off)")
        if self.ckpt and self.fake:
            raise ConfigError("give ckpt= or fake=, not both")
        if self.fake and not self.real and not self.fake.endswith(".pt"):
            raise ConfigError("real= is required with fake= (a dataset name, folder or .npz)")
        if self.truncation is not None:
            self.truncations()
            if self.fake:
                raise ConfigError("truncation= draws from a checkpoint: give ckpt=, not fake=")
        if self.plot is not None and self.truncation is None:
            raise ConfigError("plot= draws a truncation curve: give truncation=a,b,c too")
        if self.plot is not None and not self.plot.lower().endswith(".png"):
            raise ConfigError(f"plot={self.plot}: the curve is written as a .png file")

    def truncations(self) -> list[float]:
        """The values of truncation=, in the order given; each must be > 0."""
        values = comma_separated_numbers("truncation", self.truncation, "2.0,1.0,0.5")
        bad = [v for v in values if not v > 0]
        if bad:
            raise ConfigError(f"truncation values must be > 0, got {bad[0]:g}")
        return values

    def settings(self) -> MetricSettings:
        return MetricSettings(self.kid_subsets, self.kid_subset_size, self.is_splits,
                              self.pr_k, self.seed)


def latest_checkpoint(root: str | Path = "outputs") -> Path:
    found = sorted(Path(root).glob("**/checkpoints/last.pt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise GanError(f"no run with checkpoints/last.pt under {Path(root).resolve()}; pass "
                       f"ckpt=PATH, or real=... fake=...")
    return found[-1]


def check_inputs(chosen: list[str], real: cache.RealStats, fake_features: np.ndarray,
                 fake_logits: np.ndarray, real_name: str = "the real images",
                 fake_name: str = "the generated images") -> None:
    """One line naming the source when features or logits hold NaN or Inf."""
    require_finite(fake_features, f"the features of {fake_name}")
    if "is" in chosen or fake_logits is not None and np.size(fake_logits):
        require_finite(fake_logits, f"the classifier logits of {fake_name}")
    require_finite(real.features, f"the features of {real_name}")
    require_finite(real.mu, f"the cached statistics of {real_name}")
    require_finite(real.sigma, f"the cached statistics of {real_name}")


def fit_kid_subset_size(settings: MetricSettings, n_real: int, n_fake: int) -> None:
    """KID's subsets cannot be larger than the smaller set: use (and record) the size that
    fits, with a warning when it had to shrink."""
    used = used_subset_size(settings.kid_subset_size, n_real, n_fake)
    if used < settings.kid_subset_size:
        import sys

        print(f"warning: KID subsets of {used} images instead of kid_subset_size="
              f"{settings.kid_subset_size}: only {n_real} real and {n_fake} generated images "
              f"(the estimate is noisier; the protocol records {used})", file=sys.stderr)
        settings.kid_subset_size = used


def compute_metrics(chosen: list[str], real: cache.RealStats, fake_features: np.ndarray,
                    fake_logits: np.ndarray, extractor: Extractor, settings: MetricSettings,
                    device: torch.device, real_name: str = "the real images",
                    fake_name: str = "the generated images") -> dict:
    """Every chosen metric, named with the extractor's prefix ("mnist_fid", ...)."""
    check_inputs(chosen, real, fake_features, fake_logits, real_name, fake_name)
    if "kid" in chosen:
        fit_kid_subset_size(settings, real.features.shape[0], fake_features.shape[0])
    p, out = extractor.metric_prefix, {}
    if "fid" in chosen:
        out[p + "fid"] = frechet_distance(*gaussian_stats(fake_features), real.mu, real.sigma)
    if "kid" in chosen:
        out[p + "kid"], out[p + "kid_std"] = kernel_inception_distance(
            real.features, fake_features, settings.kid_subsets, settings.kid_subset_size,
            settings.seed, device)
    if "is" in chosen:
        out[p + "is"], out[p + "is_std"] = inception_score(fake_logits, settings.is_splits)
    if "pr" in chosen:
        out[p + "precision"], out[p + "recall"] = precision_recall(
            real.features, fake_features, settings.pr_k, device)
    if extractor.name == "mnist":
        out.update(class_coverage(fake_logits))
    return out


def class_coverage(logits: np.ndarray) -> dict:
    """Share of generated digits the classifier assigns to each class, and how many classes
    get at least half of a fair share (a collapsed generator covers few)."""
    k = logits.shape[1]
    fractions = np.bincount(logits.argmax(axis=1), minlength=k) / logits.shape[0]
    return {"mnist_class_fractions": [round(float(f), 6) for f in fractions],
            "mnist_classes_covered": int((fractions >= 0.5 / k).sum())}


def _sources(args: EvalArgs, device: torch.device) -> tuple[Source, Source]:
    def open_(spec: str, role: str) -> Source:
        return open_source(spec, role, args.n, args.seed, device, args.num_workers, args.ema)

    if args.fake:
        fake = open_(args.fake, "fake")
    else:
        ckpt = args.ckpt or latest_checkpoint()
        fake = CheckpointSource(ckpt, args.n, args.seed, device, args.ema,
                                standing_stats=args.standing_stats)
    if args.real:
        return open_(args.real, "real"), fake
    if not isinstance(fake, CheckpointSource):
        raise ConfigError(f"real= is required with fake={args.fake} (a dataset name, "
                          f"folder or .npz)")
    # the data the run was trained on
    return DatasetSource(fake.dataset_config(), args.n, args.seed,
                         num_workers=args.num_workers), fake


class _Progress:
    """A progress bar on stderr for feature extraction (images are slow on a CPU)."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                            MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                            console=Console(stderr=True), transient=True)

    def __enter__(self):
        self.bar.start()
        return self

    def __exit__(self, *exc):
        self.bar.stop()

    def features(self, extractor, source: Source, device, batch_size: int, label: str):
        task = self.bar.add_task(label, total=len(source), rate="")
        start = time.perf_counter()

        def advance(k: int):
            self.bar.advance(task, k)
            done = self.bar.tasks[task].completed
            self.bar.update(task, rate=f"{done / (time.perf_counter() - start):.1f} img/s")

        return extract(extractor, source.batches(batch_size), device, advance)


def real_statistics(args: EvalArgs, progress: _Progress, extractor: Extractor,
                    real_source: Source, device: torch.device) -> cache.RealStats:
    """The real images' features and their Gaussian fit: from the cache when it holds them
    (unless no_cache), else computed (and cached)."""
    def real_features():
        features = progress.features(extractor, real_source, device, args.batch_size,
                                     "real features")[0]
        require_finite(features, f"the features of {_name(real_source)}")
        return features

    if args.no_cache:
        features = real_features()
        return cache.RealStats(features, *gaussian_stats(features))
    return cache.real_stats(real_source, extractor.protocol, real_features, args.cache_dir)


def run_eval(args: EvalArgs, write_out: bool = True) -> dict:
    """The metrics args asks for; written to args.out as JSON unless `write_out` is False
    (the caller then writes them, e.g. after printing them)."""
    from gancli.devices import resolve_device

    start = time.perf_counter()
    if args.out:  # before any computing: a bad out= fails now, not after the metrics
        check_writable(args.out, "out")
    chosen = [m for m in METRICS if m in args.metrics] or ["fid"]
    device = resolve_device(args.device)
    if not (args.fake or args.real) and is_translation_run(args.ckpt or latest_checkpoint()):
        result = translation_eval(args, device)
        if args.out and write_out:
            write_result(result, args.out)
        return result
    real_source, fake_source = _sources(args, device)  # first: a bad checkpoint fails fast
    extractor = build_extractor(args.extractor, device, args.inception_weights)

    with _Progress() as progress:
        real = real_statistics(args, progress, extractor, real_source, device)
        fake_features, fake_logits = progress.features(extractor, fake_source, device,
                                                       args.batch_size, "fake features")

    settings = args.settings()
    metrics = compute_metrics(chosen, real, fake_features, fake_logits, extractor, settings,
                              device, _name(real_source), _name(fake_source))
    result = {
        "metrics": metrics,
        "n_real": int(real.features.shape[0]),
        "n_fake": int(fake_features.shape[0]),
        "extractor": extractor.protocol["extractor"],
        "resize": extractor.protocol["resize"],
        "real": real_source.describe(),
        "fake": fake_source.describe(),
        "real_stats": {"cache": str(real.path) if real.path else None, "reused": real.reused},
        "protocol": {**extractor.protocol, **settings.describe(chosen),
                     "fake_to_uint8": FAKE_TO_UINT8},
        "device": str(device),
        "seconds": round(time.perf_counter() - start, 2),
    }
    if args.out and write_out:
        write_result(result, args.out)
    return result


def translation_eval(args: EvalArgs, device: torch.device) -> dict:
    """A translation run's measures on its held-out items (gancli/metrics/translation.py),
    in the layout print_table shows."""
    from gancli.translate import load_translator

    start = time.perf_counter()
    ckpt = args.ckpt or latest_checkpoint()
    family, data = load_translator(ckpt, device, args.ema)
    measured = evaluate_translation(family, data, device, ExtractorName(args.extractor).value,
                                    args.inception_weights, args.batch_size)
    return {**measured, "n_real": measured["n_test_b"], "n_fake": measured["n_test_a"],
            "real_stats": {"cache": None, "reused": False}, "ckpt": str(ckpt),
            "device": str(device), "seconds": round(time.perf_counter() - start, 2)}


def write_result(result: dict, out: str | Path) -> Path:
    """The results as JSON; one line naming the path when it cannot be written."""
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    except OSError as err:
        raise write_error("out", out, err) from None
    return out


def _name(source: Source) -> str:
    """A source in a message: its kind and where it is (real=/fake=/ckpt=)."""
    about = source.describe()
    where = about.get("path") or (about.get("config") or {}).get("name") or ""
    return f"the {about.get('kind', 'source')} {where}".rstrip()


def _shown(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return " ".join(f"{v:.2f}" for v in value)
    return str(value)


def print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="gan eval")
    table.add_column("metric")
    table.add_column("value", overflow="fold")
    for name, value in result["metrics"].items():
        table.add_row(name, _shown(value))
    table.add_section()
    reused = "reused" if result["real_stats"]["reused"] else "computed"
    table.add_row("real images", f"{result['n_real']} ({reused})")
    table.add_row("fake images", str(result["n_fake"]))
    table.add_row("extractor", result["extractor"])
    table.add_row("resize", result["resize"])
    Console().print(table)
