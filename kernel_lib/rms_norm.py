"""rms_norm: scale by the root mean square of the trailing dimensions, as `torch.nn.functional.rms_norm`."""

from __future__ import annotations

from typing import Sequence

import ml_dtypes
import numpy as np

from kernel_lib import arguments
from kernel_lib.normalization import normalize_rows


def rms_norm(x: np.ndarray, normalized_shape: int | Sequence[int], weight: np.ndarray | None = None,
             eps: float | None = None) -> np.ndarray:
    """x / sqrt(mean(x²) + eps) · weight over the trailing `normalized_shape` dims.

    `eps=None` takes the machine epsilon of x's dtype, as PyTorch does. Computed in fp32, returned in
    x's dtype.
    """
    x = arguments.array("rms_norm", "x", x, min_ndim=1)
    eps = arguments.positive_float("rms_norm", "eps", float(ml_dtypes.finfo(x.dtype).eps) if eps is None else eps)
    return normalize_rows("rms_norm", x, normalized_shape, weight, None, eps, rms=True)
