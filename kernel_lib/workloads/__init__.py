"""Layer shapes of real networks to tune and benchmark on: ResNet-50 convolutions, BERT-base GEMMs.

The CSV files beside this module are data shipped with the package: `resnet50_conv.csv` (one row per
distinct convolution shape at 224×224 input, with how often it occurs) and `bert_base_gemm.csv`
(the encoder layer's GEMMs for T = batch·sequence tokens; the attention GEMMs are batched over
batch·12 heads).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class ConvLayer:
    """One convolution of a network's workload file: its name, input (n, c, h, w), filter (k, r, s), stride,
    padding, and how many times the network has it (`count`)."""
    name: str
    n: int
    c: int
    h: int
    w: int
    k: int
    r: int
    s: int
    stride: int
    pad: int
    count: int

    @property
    def macs(self) -> int:
        oh = (self.h + 2 * self.pad - self.r) // self.stride + 1
        ow = (self.w + 2 * self.pad - self.s) // self.stride + 1
        return self.n * oh * ow * self.k * self.c * self.r * self.s


@dataclass(frozen=True)
class GemmLayer:
    """One GEMM of a network's workload file: its name, M, N, K and how many of it run batched."""
    name: str
    m: int
    n: int
    k: int
    batch: int  # independent GEMMs of this shape (1 unless batched over heads)

    @property
    def macs(self) -> int:
        return self.batch * self.m * self.n * self.k


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files(__package__).joinpath(name).read_text()
    return list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))


def resnet50(batch: int = 4) -> list[ConvLayer]:
    """The distinct convolution layers of ResNet-50 v1.5 at 224×224 input and this batch size."""
    return [ConvLayer(row["name"], batch, *(int(row[f]) for f in ("C", "H", "W", "K", "R", "S", "stride", "pad",
                                                                  "count"))) for row in _rows("resnet50_conv.csv")]


def bert_base(batch: int = 8, sequence: int = 128) -> list[GemmLayer]:
    """The GEMMs of one BERT-base encoder layer for `batch` sequences of `sequence` tokens."""
    size = {"T": batch * sequence, "S": sequence}
    layers = []
    for row in _rows("bert_base_gemm.csv"):
        dims = [size[row[f]] if row[f] in size else int(row[f]) for f in ("M", "N", "K")]
        layers.append(GemmLayer(row["name"], *dims, batch * 12 if row["batched_over"] else 1))
    return layers
