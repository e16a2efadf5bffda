"""Lowering of block IR to machine IR: the `Lowering` object (core) and one rule per op kind.

Importing this package imports every rule module, which registers its rules in `RULES`.
"""

from npulang.backend.lowering import compute, control, conv, elementwise, memory, shapes
from npulang.backend.lowering.core import RULES, Lowering

__all__ = ["RULES", "Lowering", "compute", "control", "conv", "elementwise", "memory", "shapes"]
