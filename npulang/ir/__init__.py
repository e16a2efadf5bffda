"""The block IR: `core` (types, values, ops, result types, the builder), `printer` (text form),
`parser` (text form back to IR), `verifier` (the IR's own rules) and `interpreter` (the numpy
reference semantics).

`from npulang import ir; ir.Op, ir.Builder, ir.print_function, ...` reach core and printer; the
parser, verifier and interpreter are imported as `npulang.ir.parser`, `npulang.ir.verifier` and
`npulang.ir.interpreter`.
"""

from npulang.ir.core import (
    BINARY_OPS, CMP_PREDS, F32, FLOAT_DTYPES, FLOAT_ONLY_UNARY, I1, I32, INT_DTYPES, INT_ONLY_BINARY, REDUCE_OPS,
    UNARY_OPS, Block, Builder, DescType, Function, IRTypeError, Loc, Op, OpKind, PtrType, ScalarType, TileType, Type,
    Value, elem_type, infer_result_types, make_type, shape_of, walk, with_elem,
)
from npulang.ir.core import ConvDescType
from npulang.ir.printer import print_function

__all__ = [
    "BINARY_OPS", "CMP_PREDS", "F32", "FLOAT_DTYPES", "FLOAT_ONLY_UNARY", "I1", "I32", "INT_DTYPES",
    "INT_ONLY_BINARY", "REDUCE_OPS", "UNARY_OPS", "Block", "Builder", "DescType", "Function", "IRTypeError", "Loc",
    "Op", "OpKind", "PtrType", "ScalarType", "TileType", "Type", "Value", "elem_type", "infer_result_types",
    "make_type", "print_function", "shape_of", "walk", "with_elem",
    "ConvDescType",
]
