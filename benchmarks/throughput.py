"""Training throughput: gancli's training loop against a plain pytorch/examples-style loop.

Both train the same DCGAN (gancli's G and D, same widths and init) with the same loss and
batch size on the same data (the mnist5k digits resized to the case's resolution), in one
process, alternately, twice each; the better of the two rounds counts. Reported per case:
images/s (generator updates x batch size per second, after warm-up), the ratio ours/reference,
peak GPU memory, the FLOPs of one of our iterations and the TFLOP/s that achieves.

The reference is written the way most GAN code people run is: fp32, eager, a DataLoader
that converts uint8 images to normalised floats item by item, `.item()` on the losses every
step, a fresh `zero_grad` per network, and (for WGAN-GP) a gradient penalty by autograd.

    python benchmarks/throughput.py                  # every case, on the GPU when there is one
    python benchmarks/throughput.py --cases cpu      # DCGAN-32 batch 64, the CPU case
    python benchmarks/throughput.py --steps 200 --compile
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass

import torch
from hydra import compose, initialize_config_module
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from gancli.config import validate
from gancli.data import build_dataset
from gancli.devices import resolve_device
from gancli.losses import build_loss
from gancli.models import build_model
from gancli.training.loop import train
from gancli.training.optimizers import build_optimizer
from gancli.training.speed import autocast_dtype, enabled
from gancli.training.step import StepContext, StepOptions


@dataclass(frozen=True)
class Case:
    resolution: int
    batch: int
    loss: str  # "gan" (non-saturating) or "wgan-gp"

    @property
    def name(self) -> str:
        return f"DCGAN-{self.resolution} b{self.batch} {self.loss}"


CASES = {
    "all": [Case(32, 64, "gan"), Case(32, 256, "gan"), Case(64, 128, "gan"),
            Case(32, 64, "wgan-gp"), Case(32, 256, "wgan-gp"), Case(64, 128, "wgan-gp")],
    "cpu": [Case(32, 64, "gan")],
}


def config_for(case: Case, steps: int, device: str, compile_: bool):
    overrides = [
        f"dataset.resolution={case.resolution}", "model=dcgan", f"loss={case.loss}",
        f"train.batch_size={case.batch}", f"train.steps={steps}", f"device={device}",
        f"train.log_every={steps // 2}", f"train.sample_every={steps}",
        f"train.ckpt_every={steps}", f"train.compile={str(compile_).lower()}",
    ]
    if case.loss == "wgan-gp":  # WGAN-GP's paper settings for both loops
        overrides += ["optimizer=adam", "optimizer.lr=1e-4", "optimizer.betas=[0.0,0.9]"]
    with initialize_config_module(config_module="gancli.conf", version_base="1.3"):
        return validate(compose(config_name="config", overrides=overrides))


class ItemwiseImages(Dataset):
    """uint8 images converted to [-1, 1] floats one item at a time, like ToTensor+Normalize."""

    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i].float().div(255).sub(0.5).div(0.5), 0


def reference_images_per_s(cfg, device: torch.device, workers: int) -> float:
    """A plain loop in the style of pytorch/examples' dcgan/main.py."""
    data = build_dataset(cfg.dataset)
    netG, netD = (lambda g: (g.G, g.D))(build_model(cfg.model, data.info).to(device))
    opt_g = build_optimizer(cfg.optimizer, netG.parameters(), "g")
    opt_d = build_optimizer(cfg.optimizer, netD.parameters(), "d")
    batch, nz, wgan = cfg.train.batch_size, cfg.model.z_dim, cfg.loss.name == "wgan-gp"
    n_critic = cfg.train.n_critic if wgan else 1
    loader = DataLoader(ItemwiseImages(data.x), batch_size=batch, shuffle=True, drop_last=True,
                        num_workers=workers, pin_memory=device.type == "cuda")
    criterion = torch.nn.BCEWithLogitsLoss()
    ones = torch.ones(batch, device=device)
    zeros = torch.zeros(batch, device=device)

    def batches():
        while True:
            for real, _ in loader:
                yield real.to(device)

    stream = batches()

    def iteration():
        for _ in range(n_critic):
            real = next(stream)
            netD.zero_grad()
            noise = torch.randn(batch, nz, 1, 1, device=device)
            fake = netG(noise)
            if wgan:
                d_real, d_fake = netD(real).view(-1), netD(fake.detach()).view(-1)
                eps = torch.rand(batch, 1, 1, 1, device=device)
                x_hat = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
                (grad,) = torch.autograd.grad(netD(x_hat).sum(), x_hat, create_graph=True)
                gp = (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
                err_d = d_fake.mean() - d_real.mean() + 10 * gp
                err_d.backward()
            else:
                err_real = criterion(netD(real).view(-1), ones)
                err_real.backward()
                err_fake = criterion(netD(fake.detach()).view(-1), zeros)
                err_fake.backward()
                err_d = err_real + err_fake
            opt_d.step()
        netG.zero_grad()
        if wgan:
            fake = netG(torch.randn(batch, nz, 1, 1, device=device))
            err_g = -netD(fake).mean()
        else:
            err_g = criterion(netD(fake).view(-1), ones)
        err_g.backward()
        opt_g.step()
        return err_d.item(), err_g.item()  # the examples print these every step

    steps = cfg.train.steps
    for _ in range(max(3, steps // 10)):  # warm-up
        iteration()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        iteration()
    sync(device)
    return steps * batch / (time.perf_counter() - start)


def ours_images_per_s(cfg) -> float:
    """gancli's own training loop (`gan train`), timed by its last logging window."""
    with tempfile.TemporaryDirectory() as run_dir:
        train(cfg, run_dir)
        lines = open(f"{run_dir}/metrics.jsonl").read().splitlines()
    return json.loads(lines[-1])["steps_per_s"] * cfg.train.batch_size


def flops_per_iteration(cfg, device: torch.device) -> int:
    data = build_dataset(cfg.dataset)
    gan = build_model(cfg.model, data.info).to(device)
    optimizers = {name: build_optimizer(cfg.optimizer, params, name)
                  for name, params in gan.param_groups().items()}
    t = cfg.train
    ctx = StepContext(build_loss(cfg.loss), optimizers, StepOptions(
        n_critic=t.n_critic, batch_size=t.batch_size, reuse_fake=t.reuse_fake,
        freeze_d=device.type == "cuda",
        amp_dtype=autocast_dtype(t.precision, device),
        channels_last=enabled(t.channels_last, device)), device)
    with FlopCounterMode(display=False) as counter:
        gan.train_step(ctx, data.batches(data.sampler(t.batch_size, 0), device), 1, None)
    return counter.get_total_flops()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--cases", choices=sorted(CASES), default=None)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="train.compile=true for ours")
    parser.add_argument("--ref-workers", type=int, default=None,
                        help="reference DataLoader workers (default: 2 on GPU as in the "
                             "examples, 0 on the CPU where workers would take compute cores)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    cases = CASES[args.cases or ("all" if device.type == "cuda" else "cpu")]
    workers = args.ref_workers if args.ref_workers is not None else (
        2 if device.type == "cuda" else 0)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(f"device: {name}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.steps} timed steps, best of {args.rounds} rounds")

    rows = []
    for case in cases:
        cfg = config_for(case, args.steps, device.type, args.compile)
        ref, ours, peak = 0.0, 0.0, 0
        for _ in range(args.rounds):
            ref = max(ref, reference_images_per_s(cfg, device, workers))
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            ours = max(ours, ours_images_per_s(cfg))
            if device.type == "cuda":
                peak = max(peak, torch.cuda.max_memory_allocated())
        flops = flops_per_iteration(cfg, device)
        tflops = flops * ours / cfg.train.batch_size / 1e12
        rows.append((case.name, ref, ours, ours / ref, peak / 2**20, flops / 1e9, tflops))
        print(f"  {case.name}: reference {ref:.0f} img/s, ours {ours:.0f} img/s", flush=True)

    print("\n| case | reference img/s | ours img/s | ratio | peak MiB | GFLOP/iter | TFLOP/s |")
    print("|---|---|---|---|---|---|---|")
    for name_, ref, ours, ratio, peak, gflop, tflops in rows:
        peak_text = f"{peak:.0f}" if peak else "-"
        print(f"| {name_} | {ref:.0f} | {ours:.0f} | {ratio:.2f} | {peak_text} | {gflop:.2f} "
              f"| {tflops:.3f} |")


if __name__ == "__main__":
    main()
