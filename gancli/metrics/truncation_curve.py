"""`gan eval ckpt=... truncation=a,b,c`: a checkpoint measured at each truncation value.

The real statistics are computed (or read from the cache) once; for each value the generator
draws `n` images with the truncation trick (the same seed each time) and they are scored by
FID, precision and recall, plus any other metric asked for, and, for a class-conditional model
judged with the MNIST extractor, class accuracy: the share of samples the MNIST classifier
assigns to the class they were drawn for. Lower thresholds should raise precision and lower
recall: fidelity bought with variety.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from gancli.errors import ConfigError
from gancli.metrics.evaluate import (
    FAKE_TO_UINT8,
    METRICS,
    EvalArgs,
    _name,
    _Progress,
    compute_metrics,
    latest_checkpoint,
    real_statistics,
)
from gancli.metrics.extractors import build_extractor
from gancli.metrics.sources import CheckpointSource, DatasetSource, open_source
from gancli.paths import check_writable

CURVE_METRICS = ("fid", "pr")  # always measured along a curve


def class_accuracy(logits: np.ndarray, labels: torch.Tensor) -> float:
    """Share of samples whose predicted class (argmax of the classifier's logits) is the
    class they were drawn for."""
    return float((torch.from_numpy(logits).argmax(dim=1) == labels).double().mean())


def run_truncation_curve(args: EvalArgs) -> dict:
    """One row of metrics per truncation value of args.truncation."""
    from gancli.devices import resolve_device

    start = time.perf_counter()
    for path in (args.out, args.plot):  # before any computing
        if path:
            check_writable(path, "out" if path == args.out else "plot")
    chosen = [m for m in METRICS if m in args.metrics or m in CURVE_METRICS]
    device = resolve_device(args.device)
    fake = CheckpointSource(args.ckpt or latest_checkpoint(), args.n, args.seed, device,
                            args.ema, standing_stats=args.standing_stats)
    if args.real:
        real_source = open_source(args.real, "real", args.n, args.seed, device,
                                  args.num_workers, args.ema)
    else:
        real_source = DatasetSource(fake.dataset_config(), args.n, args.seed,
                                    num_workers=args.num_workers)
    extractor = build_extractor(args.extractor, device, args.inception_weights)
    judges_classes = fake.gan.conditional and extractor.name == "mnist"
    rows = []
    with _Progress() as progress:
        real = real_statistics(args, progress, extractor, real_source, device)
        for value in args.truncations():
            fake.truncation = value
            features, logits = progress.features(extractor, fake, device, args.batch_size,
                                                 f"truncation {value:g}")
            metrics = compute_metrics(chosen, real, features, logits, extractor,
                                      args.settings(), device, _name(real_source),
                                      _name(fake))
            if judges_classes:
                metrics["class_accuracy"] = class_accuracy(logits, fake.labels)
            rows.append({"truncation": value, **metrics})
    fake.truncation = None
    return {
        "curve": rows,
        "n_real": int(real.features.shape[0]),
        "n_fake": args.n,
        "extractor": extractor.protocol["extractor"],
        "real": real_source.describe(),
        "fake": fake.describe(),
        "real_stats": {"cache": str(real.path) if real.path else None, "reused": real.reused},
        "protocol": {**extractor.protocol, **args.settings().describe(chosen),
                     "fake_to_uint8": FAKE_TO_UINT8,
                     "class_accuracy": "MNIST classifier's argmax == requested class"
                     if judges_classes else "not measured (needs a conditional model and "
                     "extractor=mnist)"},
        "device": str(device),
        "seconds": round(time.perf_counter() - start, 2),
    }


def curve_columns(result: dict) -> list[str]:
    """The metric names of a curve, in the order the table and the plot show them."""
    rows = result["curve"]
    if not rows:
        raise ConfigError("the truncation curve has no rows")
    return [k for k, v in rows[0].items() if k != "truncation" and not isinstance(v, list)
            and not k.endswith(("_std", "classes_covered"))]


def print_curve(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    columns = curve_columns(result)
    table = Table(title=f"gan eval: truncation curve ({result['n_fake']} samples per value, "
                        f"{result['extractor']})")
    table.add_column("truncation")
    for name in columns:
        table.add_column(name, justify="right")
    for row in result["curve"]:
        table.add_row(f"{row['truncation']:g}", *(f"{row[name]:.4g}" for name in columns))
    Console().print(table)
