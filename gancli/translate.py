"""`gan translate`: run a trained translator (model=cyclegan, pix2pix) on images; also the test
grids `gan sample` writes for translation runs and the loading `gan eval` uses for them.

    gan translate ckpt=RUN input=DIR|dataset direction=a2b|b2a out=DIR/|grid.png|file.npz

`input=dataset` takes the run's held-out test items of the source domain; a folder's images
(any size, grey, RGB or RGBA) are converted to the run's channels and resized to its training
size. A grid shows each row of inputs above the row of their outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np
import torch

from gancli.config import require_positive
from gancli.devices import resolve_device
from gancli.errors import ConfigError, GanError
from gancli.images import image_grid, save_png, to_uint8
from gancli.models.translation import Translator
from gancli.paths import expand_user_path, output_target, write_error

GRID_COLUMNS = 8


class Direction(Enum):
    a2b = "a2b"  # domain A -> domain B (G_ab)
    b2a = "b2a"  # domain B -> domain A (CycleGAN's G_ba)


@dataclass
class TranslateArgs:
    ckpt: str = ""  # required: a translation run's directory or checkpoint
    input: str = "dataset"  # a folder of images, or `dataset`: the run's held-out test items
    direction: Direction = Direction.a2b  # a2b | b2a
    out: str = "translated.png"  # .png grid (inputs above outputs), .npz, or a folder/
    n: int = 64  # most images translated (all of a smaller folder or test set)
    columns: int = GRID_COLUMNS  # inputs per row of a grid
    batch_size: int = 100  # images translated at once (memory)
    device: str = "auto"  # auto | cpu | cuda
    ema: bool = True  # use the EMA generator (a2b) when the checkpoint has one

    def __post_init__(self):
        self.ckpt, self.out = expand_user_path(self.ckpt), expand_user_path(self.out)
        self.input = expand_user_path(self.input)
        for key in ("n", "columns", "batch_size"):
            require_positive(key, getattr(self, key))


def load_translator(ckpt: str | Path, device: torch.device, ema: bool = True):
    """(the trained translator, its dataset with the held-out items bound for sampling)."""
    from gancli.data import build_dataset
    from gancli.training.checkpoint import stored_config
    from gancli.training.snapshot import load_trained

    family, state = load_trained(ckpt, device, ema)
    if not isinstance(family, Translator):
        raise ConfigError(f"checkpoint {ckpt} holds model {type(family).__name__}, not a "
                          f"translator (model=cyclegan or pix2pix)")
    data = build_dataset(stored_config(state, ckpt).dataset)
    family.bind(data, device)
    return family, data


def is_translation_run(ckpt: str | Path) -> bool:
    from gancli.training.snapshot import read

    return int(read(ckpt).get("data_info", {}).get("domains", 1)) == 2


def pair_grid(inputs: torch.Tensor, outputs: torch.Tensor, columns: int) -> torch.Tensor:
    """A uint8 grid: each row of `columns` inputs above the row of their outputs."""
    rows = []
    for start in range(0, len(inputs), columns):
        rows += [inputs[start:start + columns], outputs[start:start + columns]]
        short = columns - len(rows[-1])
        if short:  # pad the last pair of rows with white
            rows[-2:] = [torch.cat([r, torch.ones(short, *r.shape[1:])]) for r in rows[-2:]]
    return image_grid(torch.cat(rows), nrow=columns)


def read_folder(folder: Path, channels: int, side: int) -> tuple[torch.Tensor, list[str]]:
    """Every image below `folder` as (N, channels, side, side) in [-1, 1], sorted by path."""
    from gancli.data.translation_files import image_files, load_image

    files = image_files(folder)
    if not files:
        raise GanError(f"no image files under input={folder}")
    return (torch.stack([load_image(p, channels, side) for p in files]),
            [p.relative_to(folder).with_suffix("").as_posix() for p in files])


def source_images(args: TranslateArgs, family: Translator, data
                  ) -> tuple[torch.Tensor, list[str]]:
    direction = args.direction.value
    if args.input == "dataset":
        images = (data.test_a if direction == "a2b" else data.test_b)[0][:args.n]
        return images, [f"{i:06d}" for i in range(len(images))]
    folder = Path(args.input)
    if not folder.is_dir():
        raise ConfigError(f"input={args.input}: give a folder of images or input=dataset")
    images, names = read_folder(folder, family.channels, family.info.shape[-1])
    return images[:args.n], names[:args.n]


@torch.no_grad()
def run_translate(args: TranslateArgs) -> Path:
    from gancli.metrics.translation import translate_all

    if not args.ckpt:
        raise ConfigError("ckpt is required: gan translate ckpt=outputs/<run> input=dataset")
    out, to_folder = output_target(args.out)
    device = resolve_device(args.device)
    family, data = load_translator(args.ckpt, device, args.ema)
    direction = args.direction.value
    if direction not in family.directions:
        raise ConfigError(f"direction={direction}: this model translates "
                          f"{' and '.join(family.directions)} only")
    inputs, names = source_images(args, family, data)
    outputs = translate_all(family, inputs, direction, device, args.batch_size)
    try:
        if to_folder:  # each output named as its input
            for name, pixels in zip(names, to_uint8(outputs), strict=True):
                target = out / f"{name}.png"
                target.parent.mkdir(parents=True, exist_ok=True)
                save_png(pixels, target)
            return out
        if out.suffix.lower() == ".npz":
            out.parent.mkdir(parents=True, exist_ok=True)
            np.savez(out, inputs=inputs.numpy(), outputs=outputs.numpy(),
                     names=np.array(names))
            return out
        return save_png(pair_grid(inputs, outputs, args.columns), out)
    except OSError as err:
        raise write_error("out", args.out, err) from None


@torch.no_grad()
def test_grid(family: Translator, data, n: int, columns: int = GRID_COLUMNS) -> torch.Tensor:
    """What `gan sample` writes for a translation run: n held-out inputs of domain A, evenly
    spaced over the test set (it may be sorted by class), above their translations."""
    from gancli.metrics.translation import translate_all

    held = data.test_a[0]
    inputs = held[torch.linspace(0, len(held) - 1, min(n, len(held))).round().long()]
    device = next(family.parameters()).device
    return pair_grid(inputs, translate_all(family, inputs, "a2b", device), columns)
