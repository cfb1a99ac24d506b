"""Input checks shared by the metrics: a NaN or Inf in features or logits (a diverged
generator, a broken extractor) would give NaN, or a finite but meaningless number, or a
linear-algebra error deep inside; it is one line naming the source instead."""

from __future__ import annotations

import numpy as np

from gancli.errors import GanError


def require_finite(values, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(array)
    if bad.any():
        rows = int(bad.reshape(array.shape[0], -1).any(axis=1).sum()) if array.ndim else 1
        total = array.shape[0] if array.ndim else 1
        raise GanError(f"{what} hold {int(bad.sum())} non-finite value(s) (NaN/Inf) in {rows} "
                       f"of {total} rows; the metric would be meaningless (a diverged "
                       f"generator or a broken feature extractor?)")
    return array
