"""Calibration for `gan nn`: a 'generator' that copies. Writes the 50 training digits of
`dataset.holdout=20 dataset.subset=5`, each 4 times with Gaussian pixel noise (std 0.1 on the
[-1, 1] scale), as docs/viz/copies50.npz for `gan nn ... fake=docs/viz/copies50.npz`.
Run from the repository root: `PYTHONPATH=. python docs/viz/copies.py`."""

import numpy as np
import torch

from gancli.data import build_dataset
from tests.helpers import compose_config

data = build_dataset(compose_config(["dataset.holdout=20", "dataset.subset=5"]).dataset)
train = data.items(torch.arange(len(data)))[0].repeat(4, 1, 1, 1)
gen = torch.Generator().manual_seed(0)
copies = (train + 0.1 * torch.randn(train.shape, generator=gen)).clamp(-1, 1)
np.savez("docs/viz/copies50.npz", samples=copies.numpy())
print(f"{len(copies)} noisy copies of {len(data)} training digits -> docs/viz/copies50.npz")
