"""`gan sample`: rebuild a generator from a checkpoint alone and write what it draws."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gancli.config import comma_separated_numbers, require_non_negative, require_positive
from gancli.devices import resolve_device
from gancli.errors import ConfigError
from gancli.images import image_grid, render, save_png, to_uint8
from gancli.models import Family
from gancli.paths import expand_user_path, output_target, write_error
from gancli.training.snapshot import load_trained
from gancli.translate import is_translation_run, load_translator, test_grid

PNG_WRITERS = 4


NOISE_MODES = ("random", "const", "none")


@dataclass
class SampleArgs:
    ckpt: str = ""  # required: a checkpoint file or a run directory
    out: str = "samples.png"  # .png grid, .npz array, or a folder (ends with /) of PNG files
    n: int = 64  # samples to draw
    interpolate: int = 0  # >0: rows of this many latent interpolation steps (slerp)
    rows: int = 8  # rows of an interpolation grid
    seed: int = 0  # seed of the latent noise (same seed, same samples)
    batch_size: int = 256  # samples generated at once (memory)
    device: str = "auto"  # auto | cpu | cuda
    ema: bool = True  # use the EMA generator when the checkpoint has one
    label: int | None = None  # conditional models: samples of this class only
    traverse: str | None = None  # InfoGAN: a grid varying this code (c1, c2, ...) along rows
    steps: int = 10  # columns of a traverse= grid for a continuous code
    # noise sensitivity: "0.1,0.3,1.0" writes `rows` rows, each a latent z followed by
    # z + a * d for each amount a, d one random direction (drawn like z) per row
    perturb: str | None = None
    # the truncation trick: latent entries beyond +-truncation are redrawn (BigGAN); null: off
    truncation: float | None = None
    # StyleGAN2: truncate only the first this many layers' styles (stylegan2-ada's
    # truncation_cutoff; the coarse ones come first); null: every layer
    truncation_cutoff: int | None = None
    # BigGAN's standing statistics: G's BatchNorm statistics re-estimated from this many
    # batches of generated samples before sampling (0: the running averages of training)
    standing_stats: int = 0
    # StyleGAN2: a style-mixing grid of mix x mix images below and beside their sources,
    # coarse styles (the lower half of the layers) from the row, fine from the column (0: off)
    mix: int = 0
    noise: str | None = None  # StyleGAN2's noise inputs: random | const | none (null: random)

    def __post_init__(self):
        self.ckpt, self.out = expand_user_path(self.ckpt), expand_user_path(self.out)
        for key in ("n", "rows", "batch_size", "steps", "truncation", "truncation_cutoff"):
            require_positive(key, getattr(self, key))
        require_non_negative("standing_stats", self.standing_stats, " (0 is off)")
        if self.interpolate < 0 or self.interpolate == 1:
            raise ConfigError(f"interpolate must be 0 (off) or >= 2, got {self.interpolate}")
        if self.mix < 0 or self.mix == 1:
            raise ConfigError(f"mix must be 0 (off) or >= 2, got {self.mix}")
        if self.noise is not None and self.noise not in NOISE_MODES:
            raise ConfigError(f"noise must be one of {', '.join(NOISE_MODES)}, got {self.noise}")
        if self.perturb is not None:
            self.perturb_amounts()

    def perturb_amounts(self) -> list[float]:
        amounts = comma_separated_numbers("perturb", self.perturb, "0.1,0.3,1.0", "amounts")
        if not amounts or any(a < 0 for a in amounts):
            raise ConfigError(f"perturb amounts must be >= 0, got '{self.perturb}'")
        return amounts


def load_gan(ckpt: str | Path, device: torch.device, ema: bool = True) -> tuple[Family, dict]:
    """The model a checkpoint was trained with, its sampler's EMA weights in place when
    `ema`, in eval mode; and the checkpoint's contents."""
    return load_trained(ckpt, device, ema)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows of a and b at fractions t (shape (T,))."""
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    t = t.view(-1, 1, 1)
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def check_label(gan: Family, label: int | None) -> None:
    if label is None:
        return
    if not gan.conditional:
        raise ConfigError(f"label={label} needs a class-conditional model (cgan, acgan, "
                          f"biggan); this checkpoint's generator takes no labels")
    if not 0 <= label < gan.info.num_classes:
        raise ConfigError(f"label must be in 0..{gan.info.num_classes - 1}, got {label}")


def _with_label(y: torch.Tensor | None, label: int | None) -> torch.Tensor | None:
    # the labels are still drawn, so label=k keeps the noise of the run without it
    return y if label is None or y is None else torch.full_like(y, label)


@torch.no_grad()
def generate_batches(gan: Family, n: int, device: torch.device, seed: int, batch_size: int,
                     G: torch.nn.Module | None = None, label: int | None = None
                     ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """n samples in batches, left on `device`, with their labels (None for unconditional
    models): memory stays one batch however large n is. `G` replaces gan.G (an EMA copy);
    `label` fixes the class of a conditional model's samples."""
    gen = torch.Generator(device).manual_seed(seed)
    cuda = [device] if device.type == "cuda" else []
    for batch, start in enumerate(range(0, n, batch_size)):
        m = min(batch_size, n - start)
        z = gan.sample_latent(m, device, generator=gen)
        y = _with_label(gan.sample_labels(m, device, generator=gen), label)
        # what a family draws inside generate (StyleGAN2's noise inputs) comes from torch's
        # global generator: seeded here from `seed`, so the samples depend on it alone
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed((seed * 1_000_003 + batch) % 2**63)
            x = gan.generate(z, y, G=G).float()
        yield x, y


def generate(gan: Family, n: int, device: torch.device, seed: int, batch_size: int,
             label: int | None = None):
    """n samples (on the CPU) and their labels (None for unconditional models)."""
    samples, labels = [], []
    for x, y in generate_batches(gan, n, device, seed, batch_size, label=label):
        samples.append(x.cpu())
        if y is not None:
            labels.append(y.cpu())
    return torch.cat(samples), (torch.cat(labels) if labels else None)


@torch.no_grad()
def interpolation_grid(gan: Family, rows: int, steps: int, device, seed: int,
                       label: int | None = None) -> torch.Tensor:
    gen = torch.Generator(device).manual_seed(seed)
    a = gan.sample_latent(rows, device, generator=gen)
    b = gan.sample_latent(rows, device, generator=gen)
    y = _with_label(gan.sample_labels(rows, device, generator=gen), label)
    z = slerp(a, b, torch.linspace(0, 1, steps, device=device))  # (steps, rows, z)
    z = z.transpose(0, 1).reshape(rows * steps, -1)
    y = y.repeat_interleave(steps) if y is not None else None
    return gan.generate(z, y).float().cpu()


@torch.no_grad()
def class_grid(gan: Family, per_class: int, device, seed: int) -> torch.Tensor:
    """A conditional model's samples, class 0 in the first row, class 1 in the next, ..."""
    gen = torch.Generator(device).manual_seed(seed)
    k = gan.info.num_classes
    z = gan.sample_latent(k * per_class, device, generator=gen)
    y = torch.arange(k, device=device).repeat_interleave(per_class)
    return gan.generate(z, y).float().cpu()


@torch.no_grad()
def traversal_grid(gan: Family, code: str, rows: int, steps: int, device,
                   seed: int) -> tuple[torch.Tensor, int]:
    """(samples, columns): each row holds one latent and varies `code` along the columns."""
    gen = torch.Generator(device).manual_seed(seed)
    z = gan.traversal(code, rows, steps, device, generator=gen)
    y = gan.sample_labels(len(z), device, generator=gen)
    return gan.generate(z, y).float().cpu(), len(z) // rows


@torch.no_grad()
def perturbation_grid(gan: Family, rows: int, amounts: list[float], device, seed: int,
                      label: int | None = None) -> torch.Tensor:
    """Per row: G(z), then G(z + a * d) for each amount a; d is a random direction drawn like
    z, one per row, so a row shows how far the output moves as its latent moves further."""
    gen = torch.Generator(device).manual_seed(seed)
    z = gan.sample_latent(rows, device, generator=gen)
    d = gan.sample_latent(rows, device, generator=gen)
    y = _with_label(gan.sample_labels(rows, device, generator=gen), label)
    scale = torch.tensor([0.0, *amounts], device=device).view(1, -1, 1)
    zs = (z.unsqueeze(1) + scale * d.unsqueeze(1)).reshape(rows * (len(amounts) + 1), -1)
    ys = y.repeat_interleave(len(amounts) + 1) if y is not None else None
    return gan.generate(zs, ys).float().cpu()


STANDING_STATS_SEED_OFFSET = 0x5747  # the standing statistics' draws apart from the samples'


@torch.no_grad()
def standing_statistics(gan: Family, batches: int, batch_size: int, device: torch.device,
                        seed: int) -> None:
    """BigGAN's standing statistics: reset the BatchNorm statistics of the sampler and
    re-estimate them as the plain average over `batches` batches of generated samples, drawn
    as the samples will be (same truncation), instead of the moving averages of training
    (which, for an EMA copy, were kept for other weights)."""
    norms = [m for m in gan.sampler.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        raise ConfigError(f"standing_stats={batches} re-estimates BatchNorm statistics; this "
                          f"checkpoint's {gan.sampler_name} has no BatchNorm layer")
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over all batches
    gen = torch.Generator(device).manual_seed(seed + STANDING_STATS_SEED_OFFSET)
    gan.sampler.train()
    try:
        for _ in range(batches):
            z = gan.sample_latent(batch_size, device, generator=gen)
            gan.generate(z, gan.sample_labels(batch_size, device, generator=gen))
    finally:
        gan.sampler.eval()
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum


def write_png_folder(samples: torch.Tensor, folder: Path, start: int = 0) -> None:
    """One PNG per image, named from `start` on. The batch is converted to uint8 at once and
    the files are encoded in threads (zlib releases the GIL): 2-10x faster than one by one."""
    folder.mkdir(parents=True, exist_ok=True)
    pixels = to_uint8(samples)
    with ThreadPoolExecutor(PNG_WRITERS) as pool:
        list(pool.map(lambda i: save_png(pixels[i], folder / f"{start + i:06d}.png"),
                      range(len(pixels))))


def run_sample(args: SampleArgs) -> Path:
    """Write what args asks for; an `out=` that cannot be written fails before any sampling."""
    out, to_folder = output_target(args.out)
    device = resolve_device(args.device)
    if out.suffix.lower() == ".png" and not to_folder and is_translation_run(args.ckpt):
        # a translator's grid: held-out inputs above their translations
        family, data = load_translator(args.ckpt, device, args.ema)
        return save_png(test_grid(family, data, args.n), out)
    gan, _ = load_gan(args.ckpt, device, args.ema)
    check_label(gan, args.label)
    try:
        with (gan.truncation(args.truncation, args.truncation_cutoff),
              gan.noise_inputs(args.noise)):
            if args.standing_stats:
                standing_statistics(gan, args.standing_stats, args.batch_size, device,
                                    args.seed)
            return _write_samples(args, gan, device, out, to_folder)
    except OSError as err:  # e.g. the disk filled up while writing
        raise write_error("out", args.out, err) from None


def _write_samples(args: SampleArgs, gan: Family, device: torch.device, out: Path,
                   to_folder: bool) -> Path:
    if args.traverse is not None:
        if gan.info.kind != "image" or out.suffix.lower() != ".png":
            raise ConfigError("traverse= writes a .png grid of an image model")
        grid, columns = traversal_grid(gan, args.traverse, args.rows, args.steps, device,
                                       args.seed)
        return save_png(image_grid(grid, nrow=columns), out)
    if args.mix:
        if out.suffix.lower() != ".png":
            raise ConfigError("mix= writes a .png grid")
        return save_png(image_grid(gan.mixing_grid(args.mix, device, args.seed),
                                   nrow=args.mix + 1), out)
    if args.perturb is not None:
        if gan.info.kind != "image" or out.suffix.lower() != ".png":
            raise ConfigError("perturb= writes a .png grid of an image model")
        amounts = args.perturb_amounts()
        grid = perturbation_grid(gan, args.rows, amounts, device, args.seed, args.label)
        return save_png(image_grid(grid, nrow=len(amounts) + 1), out)
    if args.interpolate:
        if gan.info.kind != "image":
            raise ConfigError("interpolate needs an image model")
        grid = interpolation_grid(gan, args.rows, args.interpolate, device, args.seed,
                                  args.label)
        return save_png(image_grid(grid, nrow=args.interpolate), out)
    if to_folder:
        if gan.info.kind != "image":
            raise ConfigError("a folder of PNG files needs an image model; use out=x.npz")
        # batch by batch: n=50000 never holds more than one batch in memory
        batches = generate_batches(gan, args.n, device, args.seed, args.batch_size,
                                   label=args.label)
        for i, (x, _) in enumerate(batches):
            write_png_folder(x, out, start=i * args.batch_size)
        return out
    if (out.suffix.lower() == ".png" and args.label is None and gan.info.kind == "image"
            and gan.conditional):  # one row per class, n // classes samples each
        per_class = max(1, args.n // gan.info.num_classes)
        grid = class_grid(gan, per_class, device, args.seed)
        return save_png(image_grid(grid, nrow=per_class), out)
    samples, labels = generate(gan, args.n, device, args.seed, args.batch_size, args.label)
    if out.suffix == ".npz":
        out.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"samples": samples.numpy()}
        if labels is not None:
            arrays["labels"] = labels.numpy()
        np.savez(out, **arrays)
        return out
    if out.suffix.lower() == ".png":
        return save_png(render(samples, gan.info.kind), out)
    raise ConfigError(f"out={args.out}: use a .png grid, an .npz file, or a folder ending in /")
