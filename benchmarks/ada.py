"""Adaptive augmentation on little data: the default DCGAN on 500 mnist5k digits (50 per class,
200 more held out), trained for the same steps without augmentation and with
`train.augment_p=ada`, then measured alike:

- r_t = E[sign(D(x))] of the final D over the 500 training digits and over the 200 held-out
  ones (unaugmented): near 1 on training digits and lower on held-out ones is a D that has
  memorised its training set, the overfitting ADA steers against (its target: 0.6);
- mnist_fid, precision and recall of 2,000 samples against all 5,000 mnist5k digits (the
  project's MNIST classifier's features, `gan eval extractor=mnist real=mnist5k`);
- for the ADA run, p and r_t over training (from metrics.jsonl), drawn to --plot.

    python benchmarks/ada.py                                  # 3,000 steps each, seed 0
    python benchmarks/ada.py --steps 1000 --runs outputs/ada --plot docs/ada_p.png
    python benchmarks/ada.py --set train.ada_kimg=20          # extra overrides for both runs

Each run is skipped when its folder already holds a final checkpoint; one thread per run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from common import compose_run, is_trained

from gancli.data import build_dataset
from gancli.metrics.evaluate import EvalArgs, run_eval
from gancli.sampling import load_gan
from gancli.training.loop import train

DATA = ["dataset=mnist5k", "dataset.subset=50", "dataset.holdout=20"]
ADA = ["train.augment=[translation,color,cutout]", "train.augment_p=ada", "train.ada_kimg=50"]
RUNS = {"none": [], "ada": ADA}


def config(name: str, seed: int, steps: int, extra: list[str]):
    return compose_run([*DATA, *RUNS[name], f"seed={seed}", "device=cpu", "device.threads=1",
                        f"train.steps={steps}", "train.log_every=50",
                        f"train.ckpt_every={steps}", *extra])


def sign_mean(family, images: torch.Tensor) -> float:
    with torch.no_grad():
        scores = torch.cat([family.discriminate(batch) for batch in images.split(100)])
    return scores.sign().mean().item()


def measure(name: str, run_dir: Path, cfg, seed: int, n: int) -> dict:
    family, _ = load_gan(run_dir, torch.device("cpu"))
    data = build_dataset(cfg.dataset)
    held_out, _ = data.held_out
    row = {"run": name, "r_t_train": sign_mean(family, data.real_samples(len(data), seed)),
           "r_t_held_out": sign_mean(family, held_out)}
    metrics = run_eval(EvalArgs(ckpt=str(run_dir), real="mnist5k", extractor="mnist",
                                metrics=["fid", "pr"], n=n, seed=seed, device="cpu"),
                       write_out=False)["metrics"]
    row.update({key: metrics[key] for key in ("mnist_fid", "mnist_precision", "mnist_recall")})
    return row


def plot_p(run_dir: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    records = [r for r in records if "augment_p" in r]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot([r["step"] for r in records], [r["augment_p"] for r in records], label="p")
    ax.plot([r["step"] for r in records], [r["ada_rt"] for r in records], label="r_t", alpha=0.7)
    ax.axhline(0.6, color="grey", lw=0.8, ls="--", label="ada_target")
    ax.set_xlabel("step")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title("train.augment_p=ada on 500 mnist5k digits")
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=2000, help="samples per side for mnist_fid")
    parser.add_argument("--runs", type=Path, default=Path("outputs/ada"))
    parser.add_argument("--only", choices=sorted(RUNS), default=None, help="train one run")
    parser.add_argument("--plot", type=Path, default=None, help="draw the ADA run's p here")
    parser.add_argument("--set", nargs="*", default=[], help="extra overrides for both runs")
    args = parser.parse_args()
    torch.set_num_threads(1)

    rows = []
    for name in [args.only] if args.only else RUNS:
        cfg = config(name, args.seed, args.steps, args.set)
        run_dir = args.runs / f"{name}_seed{args.seed}"
        if not is_trained(run_dir, args.steps):
            wall, cpu = time.perf_counter(), time.process_time()
            train(cfg, run_dir)
            print(f"{name}: {time.process_time() - cpu:.0f} CPU s, "
                  f"{time.perf_counter() - wall:.0f} s wall", flush=True)
        rows.append(measure(name, run_dir, cfg, args.seed, args.n))
        print(json.dumps(rows[-1]), flush=True)
    if args.plot is not None and "ada" in [r["run"] for r in rows]:
        plot_p(args.runs / f"ada_seed{args.seed}", args.plot)

    print(f"\n500 mnist5k digits, dcgan, {args.steps} steps of 64, seed {args.seed}; "
          f"mnist_fid of {args.n} samples against all 5,000 digits")
    header = ("run", "r_t train", "r_t held-out", "mnist_fid", "precision", "recall")
    print("| " + " | ".join(header) + " |\n|" + " --- |" * len(header))
    for r in rows:
        print(f"| {r['run']} | {r['r_t_train']:.3f} | {r['r_t_held_out']:.3f} | "
              f"{r['mnist_fid']:.2f} | {r['mnist_precision']:.3f} | {r['mnist_recall']:.3f} |")


if __name__ == "__main__":
    main()
