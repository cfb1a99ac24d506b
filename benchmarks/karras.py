"""StyleGAN2 vs ProGAN vs DCGAN on mnist5k at 32x32, each trained for the same CPU time on one
thread, then scored alike by `gan eval` in the project's MNIST classifier's features
(mnist_fid, precision, recall).

Equal CPU time, not equal steps: ProGAN's steps get dearer as it grows, so each run has
`train.max_seconds=<--seconds> train.clock=cpu` (this process's CPU seconds, fair on a shared
machine) and a step count it never reaches. The recipes: +experiment=stylegan2_mnist5k,
+experiment=progan_mnist5k, and the default run (dcgan) at dataset.resolution=32.

    python benchmarks/karras.py                          # 900 CPU s each, seed 0
    python benchmarks/karras.py stylegan2 --seconds 60 --runs outputs/karras_short
    python benchmarks/karras.py --grids docs             # sample grids, mixing, truncation

A run whose folder holds karras.json (written when its training ended) is measured, not
trained again; so two models may train in two processes and a third call prints the table.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from common import compose_run, model_arguments, print_table

from gancli.images import image_grid, save_png
from gancli.metrics.evaluate import EvalArgs, run_eval
from gancli.sampling import SampleArgs, generate, load_gan, run_sample
from gancli.training.loop import train

MODELS = {"stylegan2": ["+experiment=stylegan2_mnist5k"],
          "progan": ["+experiment=progan_mnist5k"],
          "dcgan": ["dataset.resolution=32"]}
NEVER_REACHED = 1_000_000  # train.steps: the time budget ends every run
PSI = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)


def config(model: str, seed: int, seconds: float, extra: list[str]):
    return compose_run([*MODELS[model], f"seed={seed}", "device=cpu", "device.threads=1",
                        f"train.steps={NEVER_REACHED}", f"train.max_seconds={seconds}",
                        "train.clock=cpu", "train.ckpt_every=500", "train.keep_last=1",
                        *extra])


def trained(model: str, seed: int, seconds: float, run_dir: Path, extra: list[str]) -> dict:
    """The run's steps and its training's CPU and wall seconds (training it unless done)."""
    done = run_dir / "karras.json"
    if done.exists():
        return json.loads(done.read_text())
    wall, cpu = time.perf_counter(), time.process_time()
    train(config(model, seed, seconds, extra), run_dir)
    row = {"model": model, "cpu_s": round(time.process_time() - cpu, 1),
           "wall_s": round(time.perf_counter() - wall, 1),
           "steps": torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["step"]}
    done.write_text(json.dumps(row))
    return row


def measure(run_dir: Path, n: int, seed: int) -> dict:
    metrics = run_eval(EvalArgs(ckpt=str(run_dir), extractor="mnist", metrics=["fid", "pr"],
                                n=n, seed=seed, device="cpu"), write_out=False)["metrics"]
    return {key: metrics[key] for key in ("mnist_fid", "mnist_precision", "mnist_recall")}


def truncation_rows(run_dir: Path, out: Path, rows: int, seed: int) -> Path:
    """One row per latent, one column per psi in PSI: the same z and noise inputs in each
    column, w pulled towards the tracked average as psi falls."""
    gan, _ = load_gan(run_dir, torch.device("cpu"))
    columns = []
    for psi in PSI:
        with gan.truncation(psi), gan.noise_inputs("const"):
            columns.append(generate(gan, rows, torch.device("cpu"), seed, rows)[0])
    grid = torch.stack(columns, dim=1).flatten(0, 1)  # row-major: latent by psi
    return save_png(image_grid(grid, nrow=len(PSI)), out)


def write_grids(model: str, run_dir: Path, grids: Path, seed: int) -> None:
    run_sample(SampleArgs(ckpt=str(run_dir), n=64, seed=seed, device="cpu",
                          out=str(grids / f"karras_{model}.png")))
    if model == "stylegan2":
        run_sample(SampleArgs(ckpt=str(run_dir), mix=8, seed=seed, device="cpu",
                              out=str(grids / "karras_stylegan2_mixing.png")))
        truncation_rows(run_dir, grids / "karras_stylegan2_truncation.png", 8, seed)


def main() -> None:
    args = model_arguments(__doc__, MODELS, 900.0, "outputs/karras", "write karras_*.png here")

    rows = []
    for model in args.models:
        run_dir = args.runs / f"{model}_seed{args.seed}"
        row = {**trained(model, args.seed, args.seconds, run_dir, args.set),
               **measure(run_dir, args.n, args.seed)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.grids is not None:
            write_grids(model, run_dir, args.grids, args.seed)

    print_table(f"mnist5k at 32x32, train.max_seconds={args.seconds:.0f} train.clock=cpu, one "
                f"thread, seed {args.seed}; gan eval extractor=mnist n={args.n}",
                ("model", "steps", "CPU s", "wall s", "mnist_fid", "precision", "recall"),
                [[r["model"], str(r["steps"]), f"{r['cpu_s']:.0f}", f"{r['wall_s']:.0f}",
                  f"{r['mnist_fid']:.2f}", f"{r['mnist_precision']:.3f}",
                  f"{r['mnist_recall']:.3f}"] for r in rows])

if __name__ == "__main__":
    main()
