"""layer_norm: normalise over the trailing dimensions, as `torch.nn.functional.layer_norm`."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from kernel_lib import arguments
from kernel_lib.normalization import normalize_rows


def layer_norm(x: np.ndarray, normalized_shape: int | Sequence[int], weight: np.ndarray | None = None,
               bias: np.ndarray | None = None, eps: float = 1e-5) -> np.ndarray:
    """(x - mean) / sqrt(var + eps) · weight + bias over the trailing `normalized_shape` dims (biased var).

    Statistics are computed in fp32; the result has x's dtype. weight and bias, when given, have shape
    `normalized_shape` and x's dtype.
    """
    eps = arguments.positive_float("layer_norm", "eps", eps)
    return normalize_rows("layer_norm", x, normalized_shape, weight, bias, eps, rms=False)
