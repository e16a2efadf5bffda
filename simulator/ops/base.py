"""What an opcode's rule produces, the registry of rules, and helpers shared by the pipe modules.

A rule is registered per opcode (`@rule("load")`) and compiles one `Instr` once per program into:
- `ScalarOp`: a step run at issue on the scalar unit (registers are a Python list);
- `SyncOp`: set_flag / wait_flag, handled by the core's flag logic;
- `PipeOp`: `resolve(registers) -> args` at issue (memory operands become byte addresses), then
  `plan(args) -> Plan` (accesses for bounds and races, cost; never numpy) and, when effects run,
  `execute(args, memory)` (the numpy effect). For an instruction with one GM address operand, `plan`
  must be translation-invariant in it (GM accesses and `xfer.addr` move with it, nothing else
  changes): the core caches the plan by the other operands and shifts it to each address.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import numpy as np

from isa import Instr, MachineSpec, Mem, Pipe, Reg
from simulator.errors import SimError
from simulator.gm import GmXfer
from simulator.memory import CoreMemory

PIPE_ORDER: tuple[Pipe, ...] = tuple(Pipe)
PIPE_INDEX: dict[Pipe, int] = {p: i for i, p in enumerate(PIPE_ORDER)}
PIPE_NAMES: tuple[str, ...] = tuple(p.value for p in PIPE_ORDER)

Access = tuple[str, int, int, bool]  # space, first byte, end byte, is a write


class Plan(NamedTuple):
    """An instruction's resolved footprint and cost, before GM contention is known."""

    accesses: tuple[Access, ...]
    occupancy: int  # cycles the pipe is busy (a GM transfer may stretch it)
    latency: int  # start-up added to completion
    xfer: GmXfer | None = None  # the GM side, costed on the shared bandwidth calendar
    port: float = 0.0  # the pipe's GM port, bytes/cycle


@dataclass(frozen=True, slots=True)
class ScalarOp:
    """Runs at issue: `step(registers, launch context)` returns a branch target or None.

    `source` is the step as Python text over `R`, `X` and `C` (`consts`), for the block compiler
    (simulator.codegen): a statement, or for a branch (`target` set) the condition to branch on.
    """

    step: Callable[[list, Any], int | None] | None
    barrier: bool = False
    source: str = ""
    consts: tuple[Any, ...] = ()
    target: int | None = None


@dataclass(frozen=True, slots=True)
class SyncOp:
    """A `set_flag` or `wait_flag` decoded: the pipes it links and its event id."""
    is_set: bool
    src: int
    dst: int
    event: int


@dataclass(frozen=True, slots=True)
class PipeOp:
    """`setup`: cycles of a GM transfer's command set-up before its GM side starts (the core books the
    transfer at start + setup and occupies the pipe for at least setup + the transfer's cycles)."""

    resolve: Callable[[list], tuple]
    plan: Callable[[tuple], Plan]
    execute: Callable[[tuple, CoreMemory], None]
    setup: int = 0
    # a gather's or scatter's data-dependent GM bytes: [lo, hi) runs its active lanes touch (effects running)
    gm_spans: Callable[[tuple, CoreMemory], list[tuple[int, int]]] | None = None


Lowered = ScalarOp | SyncOp | PipeOp


@dataclass(frozen=True)
class Env:
    """What rules may read while compiling: the machine and the program's labels."""

    spec: MachineSpec
    labels: dict[str, int]


RULES: dict[str, Callable[[Instr, Env], Lowered]] = {}


def rule(*opcodes: str) -> Callable:
    """Register a compile function for opcodes."""

    def register(fn: Callable[[Instr, Env], Lowered]) -> Callable[[Instr, Env], Lowered]:
        for op in opcodes:
            assert op not in RULES, f"two rules for {op}"
            RULES[op] = fn
        return fn

    return register


# -- operand resolution --------------------------------------------------------------------------
def resolver_parts(instr: Instr) -> tuple[list[str], list[Any]]:
    """The instruction's resolved operands as Python expressions, one per operand, over registers `R`
    and constants `C` (the returned list); an expression without `R[` is a constant."""
    consts: list[Any] = []
    parts = []
    for v in instr.args:
        if isinstance(v, Reg):
            parts.append(f"R[{v.index}]")
        elif isinstance(v, Mem):
            parts.append(str(v.offset) if v.base is None else f"R[{v.base.index}] + {v.offset}")
        elif type(v) is int:
            parts.append(str(v))
        else:
            consts.append(v)
            parts.append(f"C[{len(consts) - 1}]")
    return parts, consts


def make_resolver(instr: Instr) -> Callable[[list], tuple]:
    """A function reading the instruction's register operands at issue. Generated as one lambda so
    the issue loop pays a single call per instruction."""
    parts, consts = resolver_parts(instr)
    resolve = eval(f"lambda R: ({', '.join(parts)},)", {"C": consts})  # noqa: S307 - from our own table
    resolve.instr = instr  # the block compiler inlines resolver_parts(instr) for this function
    return resolve


def fields(instr: Instr, *names: str) -> tuple[int, ...]:
    """Positions of named fields in the resolved argument tuple."""
    index = instr.opdef.index
    return tuple(index[n] for n in names)


# -- shared semantics ----------------------------------------------------------------------------
def clamp(valid: int | None, full: int) -> int:
    """valid_rows/valid_cols: None means all; values outside 0..full are clamped (a kernel may pass
    `n - offset` for every program and let the hardware cut it)."""
    if valid is None:
        return full
    return 0 if valid < 0 else full if valid > full else valid


def copy_shape(a: tuple, rows_at: int, cols_at: int, valid_rows_at: int, valid_cols_at: int, src_rs_at: int,
               dst_rs_at: int, dst_cs_at: int, check: bool = True) -> tuple[int, int, int, int, int]:
    """A 2-D copy that writes only its valid part (fixpipe, store): valid rows and columns, then the source
    row stride and the destination row and column strides, with None row strides meaning contiguous.
    `check=False` skips the shape check, for `execute` (its plan has checked the same operands)."""
    rows, cols = a[rows_at], a[cols_at]
    if check:
        check_shape(rows=rows, cols=cols)
    srs = cols if a[src_rs_at] is None else a[src_rs_at]
    drs = cols if a[dst_rs_at] is None else a[dst_rs_at]
    return clamp(a[valid_rows_at], rows), clamp(a[valid_cols_at], cols), srs, drs, a[dst_cs_at]


def lane_accesses(a: tuple, idx_at: int, mask_at: int, n: int, has_mask: bool) -> list[tuple]:
    """The UB bytes a gather or scatter reads besides its data: int32 indices and, if masked, the mask."""
    acc = [("ub", a[idx_at], a[idx_at] + 4 * n, False)]
    if has_mask:
        acc.append(("ub", a[mask_at], a[mask_at] + n, False))
    return acc


def active_lanes(mem: CoreMemory, a: tuple, idx_at: int, mask_at: int, n: int, has_mask: bool
                 ) -> tuple[np.ndarray, np.ndarray]:
    """A gather's or scatter's element offsets (int64) and the lanes its mask leaves on."""
    idx = mem.vector("ub", a[idx_at], n, np.dtype(np.int32)).astype(np.int64)
    if not has_mask:
        return idx, np.arange(n)
    return idx, np.flatnonzero(mem.vector("ub", a[mask_at], n, np.dtype(np.bool_)))


def check_shape(**dims: int) -> None:
    """Raise SimError unless every given dimension is a non-negative int."""
    for name, value in dims.items():
        if not isinstance(value, int) or value < 0:
            raise SimError(f"{name} must be a non-negative integer, got {value!r}")


def cycles(nbytes: int, bytes_per_cycle: float) -> int:
    """Cycles to move `nbytes` at a rate, at least 1."""
    return max(1, math.ceil(nbytes / bytes_per_cycle))


def command_cycles(command: int, nbytes: int, bytes_per_cycle: float) -> int:
    """A DMA command's occupancy on its on-chip side: its set-up (`command_cycles` in the spec), then
    every byte it reads or writes on chip, padding included, at the pipe's rate. Nothing on chip is
    written for free. A GM transfer's occupancy is the longer of this and its GM side."""
    return command + math.ceil(nbytes / bytes_per_cycle)


def run_blocks(addr: int, nbytes: int, block: int) -> int:
    """Aligned `block`-byte blocks that the run [addr, addr + nbytes) overlaps (nbytes > 0)."""
    return (addr + nbytes - 1) // block - addr // block + 1


def tile_blocks(addr: int, rows: int, cols: int, rs: int, cs: int, itemsize: int, block: int) -> int:
    """Blocks a vector operand supplies to its repeats, in lane order (Da Vinci repeat/block-stride
    addressing): a block is `block` contiguous bytes feeding consecutive lanes, so a contiguous tile is
    one run, each row of a row-strided tile its own run (rows never share a block, as their lanes do
    not continue each other), a broadcast row (cs = 0) one block per row, and any other column stride
    one block per element. Blocks are counted per use: a row re-read (rs = 0) is read again."""
    if rows <= 0 or cols <= 0:
        return 0
    if cs != 1:
        return rows if cs == 0 else rows * cols
    row = cols * itemsize
    if rs == cols or rows == 1:
        return run_blocks(addr, rows * row, block)
    pitch = rs * itemsize
    if pitch % block == 0:  # every row starts at the same offset within its block
        return rows * run_blocks(addr, row, block)
    return sum(run_blocks(addr + r * pitch, row, block) for r in range(rows))


def vector_cycles(blocks: int, bytes_per_cycle: int, block: int) -> int:
    """Repeats (one per cycle) for the operand touching the most blocks: a repeat moves
    bytes_per_cycle / block blocks of every operand at once (each from its own UB bank group), so the
    operands do not serialise and the busiest one sets the count. At least 1."""
    per_repeat = max(1, bytes_per_cycle // block)
    return max(1, -(-blocks // per_repeat))


def is_int(dt: np.dtype) -> bool:
    """True for an integer dtype."""
    return dt.kind in "iu"


def convert(x: Any, to: np.dtype) -> np.ndarray:
    """Convert values to a dtype as the hardware does: floats round to nearest, float->int truncates
    toward zero and saturates (NaN -> 0), int->int saturates, anything->i1 is `!= 0`."""
    x = np.asarray(x)
    if to == np.bool_:
        return x != 0
    if is_int(to):
        info = np.iinfo(to)
        if x.dtype.kind == "f":
            x = np.nan_to_num(np.trunc(x.astype(np.float64)), nan=0.0)
        elif x.dtype == np.bool_:
            x = x.astype(np.int64)
        return np.clip(x, info.min, info.max).astype(to)
    return x.astype(to)


def scalar_operand(value: Any, to: np.dtype) -> np.ndarray:
    """A scalar register's value as a vector operand of dtype `to`: an integer keeps the low bits a lane
    of `to` holds (two's complement, as a wide register's value narrowed to an int32 lane), so int32
    arithmetic that overflowed in the scalar unit wraps as it does in the reference semantics; anything
    else converts as `convert` does."""
    if is_int(to) and isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        bits = 8 * to.itemsize
        low = int(value) & ((1 << bits) - 1)
        if to.kind == "i" and low >= 1 << (bits - 1):
            low -= 1 << bits
        return np.asarray(low, dtype=to)
    return convert(value, to)


def compute_dtype(dt: np.dtype) -> np.dtype:
    """Vector math runs in f32 for f16/bf16 (then rounds), in int64 for integers (then wraps)."""
    if dt.kind == "f" or dt.name == "bfloat16":
        return np.dtype(np.float32)
    if dt == np.bool_:
        return dt
    return np.dtype(np.int64)
