"""Compile a Program once into the compact per-bundle form the issue loop runs.

Each instruction goes through its opcode's rule (simulator.ops) exactly once per program and
machine, so the hot loop only calls small closures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from isa import Instr, MachineSpec, Mem, Pipe, Program, ProgramError
from isa.instructions import PIPES
from simulator.errors import FlagError, SimError, describe
from simulator.ops import PIPE_INDEX, RULES, Env, PipeOp, ScalarOp, SyncOp

WORK, SET, WAIT = 0, 1, 2
NPIPES = len(PIPE_INDEX)
S_PIPE = PIPE_INDEX[Pipe.S]
UNBOUNDED = 1 << 62  # a bound set to None; a horizon no core waits at


class Op:
    """One non-scalar instruction ready to issue: pipe, kind and its rule's closures.

    `gm_pos` is the position of the instruction's one GM address operand in its resolved arguments
    (-1 if it has none or several): its plan is cached by the other operands and shifted to the address.
    `setup`: the command set-up before its GM side starts (`PipeOp.setup`).
    """

    __slots__ = ("index", "instr", "pipe", "kind", "resolve", "plan", "execute", "flag", "dst", "gm_pos", "setup",
                 "gm_spans")

    def __init__(self, index: int, instr: Instr, pipe: int, lowered: PipeOp | SyncOp, events: int) -> None:
        self.index = index
        self.instr = instr
        self.pipe = pipe
        self.resolve: Callable[[list], tuple] | None = None
        self.plan: Callable[[tuple], Any] | None = None
        self.execute: Callable[[tuple, Any], None] | None = None
        self.gm_spans: Callable[[tuple, Any], list[tuple[int, int]]] | None = None  # see PipeOp.gm_spans
        self.flag = -1
        self.dst = -1
        self.setup = 0
        gm = [i for i, v in enumerate(instr.args) if isinstance(v, Mem) and v.space == "gm"]
        self.gm_pos = gm[0] if len(gm) == 1 else -1
        if isinstance(lowered, SyncOp):
            self.kind = SET if lowered.is_set else WAIT
            self.flag = (lowered.src * NPIPES + lowered.dst) * events + lowered.event
            self.dst = lowered.dst
        else:
            self.kind = WORK
            self.resolve, self.plan, self.execute = lowered.resolve, lowered.plan, lowered.execute
            self.setup = lowered.setup
            self.gm_spans = lowered.gm_spans


class ScalarStep(NamedTuple):
    """One scalar-unit instruction made ready to run: its step function, whether it is a barrier, its lowered form."""
    index: int
    instr: Instr
    step: Callable[[list, Any], int | None] | None
    barrier: bool
    lowered: ScalarOp  # its source text, for the block compiler


class PreparedBundle(NamedTuple):
    """A tuple, so the issue loop unpacks it in one step."""

    scalar: ScalarStep | None
    ops: tuple[Op, ...]
    size: int  # instructions in the bundle


@dataclass(frozen=True)
class Prepared:
    """A program compiled for one machine."""

    program: Program
    bundles: tuple[PreparedBundle, ...]
    instrs: tuple[Instr, ...]  # by instruction index, for profiles and traces
    active_pipes: tuple[int, ...]  # pipes with memory instructions
    nflags: int
    gm_pipes: tuple[tuple[int, ...], ...]  # per bundle, the pipes of its instructions with a GM operand
    lanes: bool  # has a gather or scatter, whose lanes' indices are data (see simulator.device)
    flags: tuple[int, ...]  # the flags its set_flag and wait_flag instructions use
    compiled: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # simulator.codegen's

    def flag_name(self, flag: int, events: int) -> str:
        pair, event = divmod(flag, events)
        src, dst = divmod(pair, NPIPES)
        names = [p.value for p in PIPE_INDEX]
        return f"{names[src]}->{names[dst]} event {event}"


def prepare(program: Program, spec: MachineSpec) -> Prepared:
    """Validate the program against the machine and compile every instruction through its rule."""
    events = spec.sync.event_ids
    for ins in program.instructions():
        if ins.op in ("set_flag", "wait_flag"):
            src, dst, event = ins.args
            if src == dst:
                raise FlagError(f"{program.name}: {describe(ins)} flags from pipe {src} to itself; a flag "
                                f"orders two different pipes")
            if not 0 <= event < events:
                raise FlagError(f"{program.name}: {describe(ins)} uses event id {event}, but the machine has "
                                f"event ids 0..{events - 1}")
            if PIPES[src] is Pipe.S or PIPES[dst] is Pipe.S:
                raise FlagError(f"{program.name}: {describe(ins)}: the scalar pipe issues in order and "
                                f"cannot take part in a flag; use barrier")
    try:
        program.validate(spec)
    except ProgramError as exc:
        raise SimError(f"invalid program: {exc}") from None

    env = Env(spec, dict(program.labels))
    bundles = []
    instrs: list[Instr] = []
    active: set[int] = set()
    for bundle in program.bundles:
        scalar = None
        ops = []
        for ins in bundle.instrs:
            index = len(instrs)
            instrs.append(ins)
            try:
                lowered = RULES[ins.op](ins, env)
            except SimError as exc:
                raise type(exc)(f"{program.name}: {describe(ins)}: {exc}") from None
            pipe = PIPE_INDEX[ins.pipe]
            if isinstance(lowered, ScalarOp):
                scalar = ScalarStep(index, ins, lowered.step, lowered.barrier, lowered)
                continue
            if isinstance(lowered, PipeOp):
                active.add(pipe)
            ops.append(Op(index, ins, pipe, lowered, events))
        bundles.append(PreparedBundle(scalar, tuple(ops), len(bundle.instrs)))
    gm_pipes = tuple(tuple(op.pipe for op in b.ops if op.kind == WORK and op.gm_pos >= 0) for b in bundles)
    lanes = any(op.gm_spans is not None for b in bundles for op in b.ops)
    flags = tuple(sorted({op.flag for b in bundles for op in b.ops if op.kind != WORK}))
    return Prepared(program, tuple(bundles), tuple(instrs), tuple(sorted(active)), NPIPES * NPIPES * events,
                    gm_pipes, lanes, flags)
