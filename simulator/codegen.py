"""Compile a prepared program, once, into Python code with one function per basic block.

The issue loop in simulator.core dispatches instruction by instruction: it reads each op's pipe, kind
and flag, loops over bundles and calls a resolver and a costing method per instruction. For the
autotuner's case (timing only, no race detection, no trace, no gather or scatter: see simulator.device)
that interpretation is most of the time.
Here every basic block (a straight run of bundles from a label or a branch to the next branch) becomes
one function with pipes, flags, queue depth, operand resolution and scalar steps written out as
constants, so the driver calls one function per block.

The code does exactly what `_ProgramRun.run` does, in the same order, on the same per-pipe lists of
the run (queues, free/done times, starts, flag tokens), so the run's slow paths (a pipe blocked behind
a wait_flag, a plan cache miss, every error) are the run's own methods. The only differences are
bookkeeping that nothing observes before the program ends: the instruction count and the scalar
pipe's busy cycles are added per block, and scalar instructions' cycles from block hit counts.

Only our own text goes into the generated code: numbers, our identifiers, opcode names (validated by
the ISA) and scalar/operand expressions the rules build from register indices and integers; every
other constant is passed in a tuple.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from isa import MachineSpec
from simulator.ops.base import resolver_parts
from simulator.ops.scalar import c_div, c_rem
from simulator.prepare import NPIPES, SET, UNBOUNDED, WORK, Op, Prepared, ScalarStep

# a scalar step's Python errors that mean a bad program, not a simulator bug (as in simulator.core)
SCALAR_ERRORS = (ZeroDivisionError, TypeError, OverflowError, ValueError, IndexError)


def block_starts(prepared: Prepared) -> list[int]:
    """First bundle of every basic block: the entry, every branch target, every bundle after a branch,
    and every bundle with a GM transfer (where a program may yield to other cores, see simulator.core)."""
    n = len(prepared.bundles)
    starts = {0} | {pc for pc, pipes in enumerate(prepared.gm_pipes) if pipes}
    for pc, (scalar, _, _) in enumerate(prepared.bundles):
        if scalar is not None and scalar.lowered.target is not None:
            starts.add(scalar.lowered.target)
            starts.add(pc + 1)
    return sorted(s for s in starts if s < n)


class _Writer:
    """Indented lines of generated source."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0

    def __call__(self, line: str) -> None:
        self.lines.append("    " * self.depth + line if line else "")

    def indent(self, by: int = 1) -> None:
        self.depth += by


def generate(prepared: Prepared, spec: MachineSpec, bounded: bool = True) -> tuple[str, dict[str, Any]]:
    """The source of `bind(run, R, X, hits, max_cycles, max_instructions)`, which returns one function
    per bundle index (None where no block starts), and the globals it needs. Without `bounded` (no
    max_cycles), the per-bundle cycle bound test is left out."""
    depth, penalty = spec.scalar.queue_depth, spec.scalar.branch_penalty
    bundles = prepared.bundles
    starts = block_starts(prepared)
    ends = starts[1:] + [len(bundles)]
    namespace: dict[str, Any] = {"SCALAR_ERRORS": SCALAR_ERRORS, "c_div": c_div, "c_rem": c_rem, "UNBOUNDED": UNBOUNDED}
    ops: dict[int, Op] = {}
    scalars: dict[int, ScalarStep] = {}
    flags: set[int] = set()
    for scalar, bundle_ops, _ in bundles:
        for op in bundle_ops:
            ops[op.index] = op
            if op.kind != WORK:
                flags.add(op.flag)
        if scalar is not None:
            scalars[scalar.index] = scalar
    namespace["OPS"], namespace["SCALARS"] = ops, scalars

    w = _Writer()
    w("def bind(run, R, X, hits, max_cycles, max_instructions):")
    w.indent()
    w('"""Bind the block functions to one program run\'s state."""')
    w("free, done, issued, resolved = run.free, run.done, run.issued, run.resolved")
    w("busy, stall, sets, waits, queues = run.busy, run.stall, run.sets, run.waits, run.queues")
    w(f"{', '.join(f'q{p}' for p in range(NPIPES))} = queues")
    w(f"{', '.join(f'st{p}' for p in range(NPIPES))} = run.starts")
    for f in sorted(flags):
        w(f"tok{f} = run.tokens[{f}]")
    w("icyc, plans, region_of, transfer = run.instr_cycles, run.plans, run._region, run.gm.transfer")
    w("# each GM instruction's last argument array, reused only if arguments cannot overlap (as in run._region)")
    w("regions = run.launch.regions if run.launch.gm_args.disjoint else [None] * len(run.launch.regions)")
    w("advance, new_plan, new_shifted = run._advance, run._new_plan, run._new_shifted")
    w("transfer_block, transfer_rows = run.gm.transfer_block, run.gm.transfer_rows")
    w("sync = run.launch.sync  # [horizon, key] (simulator.core.Launch)")
    for i, op in ops.items():
        if op.kind == WORK:
            w(f"plans{i} = plans[{i}]")
            if _constant_key(op) is not None:
                w(f"KEY{i} = {_constant_key(op)}")
                w(f"plan{i} = None  # this run's plan for KEY{i}, once looked up")
    for b, (first, end) in enumerate(zip(starts, ends)):
        w("")
        _block(w, namespace, prepared, b, first, end, depth, penalty, bounded)
    w(f"return [{', '.join(f'block{starts.index(pc)}' if pc in starts else 'None' for pc in range(len(bundles)))}]")
    return "\n".join(w.lines) + "\n", namespace


def _block(w: _Writer, namespace: dict[str, Any], prepared: Prepared, b: int, first: int, end: int,
           depth: int, penalty: int, bounded: bool) -> None:
    """Bundles first..end-1 as `block{b}(t, stall_s, count) -> (next pc, t, stall_s, count)`.

    The block keeps the free/done times and issued/resolved counts of the pipes it uses in locals,
    stored back to the run's lists whenever the run's own code may read or change them: around
    resolving a blocked pipe's queue, at a barrier and on leaving the block.

    Leaving for a block whose first bundle has a GM transfer, it checks that transfer against the
    horizon, as the issue loop does before the bundle (simulator.core.gm_start): if it would start
    later, the block returns ~next (< 0) and the driver yields before calling the next block."""
    bundles = prepared.bundles
    size = sum(bundles[pc].size for pc in range(first, end))
    pipes = sorted({op.pipe for pc in range(first, end) for op in bundles[pc].ops})
    w(f"def block{b}(t, stall_s, count):")
    w.indent()
    w(f'"""Bundles {first}..{end - 1}."""')
    cached = [f"plan{op.index}" for pc in range(first, end) for op in bundles[pc].ops
              if op.kind == WORK and _constant_key(op) is not None]
    if cached:
        w(f"nonlocal {', '.join(cached)}")
    _load(w, pipes)
    for pc in range(first, end):
        scalar, ops, _ = bundles[pc]
        names = [op.instr.op for op in ops] + ([scalar.instr.op] if scalar is not None else [])
        w(f"# bundle {pc}: {' || '.join(names)}")
        if pc > first:
            w("t += 1")
        for op in ops:  # a full queue stalls issue until its oldest instruction starts
            p = op.pipe
            # (with fewer than depth issued, the test below is false and the slot still holds 0 <= t)
            w(f"if res{p} <= iss{p} - {depth}:")
            w(f"    raise run._queue_full(OPS[{op.index}])")
            w(f"s = st{p}[iss{p} % {depth}]")
            w("if s > t:")
            w("    stall_s += s - t")
            w("    t = s")
        if scalar is not None and scalar.barrier:
            w("if any(queues):")
            w(f"    raise run._barrier_blocked(SCALARS[{scalar.index}])")
            _save(w, pipes)
            w("drained = max(done)")
            w("if drained > t:")
            w("    stall_s += drained - t")
            w("    t = drained")
        if bounded:
            w("if t > max_cycles:")
            w(f"    raise run._past_max_cycles({pc}, t)")
        for op in ops:
            w(f"# {op.instr.op} (instruction {op.index})")
            w(f"iss{op.pipe} += 1")
            if op.kind == WORK:
                _work(w, namespace, op, depth)
            elif op.kind == SET:
                _set(w, op, depth, pipes)
            else:
                _wait(w, op, depth)
        if pc == end - 1:
            w(f"count += {size}")
            w(f"hits[{b}] += 1")
        if scalar is not None and scalar.lowered.source:
            _scalar(w, namespace, prepared, scalar, penalty, pipes)
    _save(w, pipes)
    _leave(w, prepared, end, 1)
    w.indent(-1)


def _load(w: _Writer, pipes: list[int]) -> None:
    for p in pipes:
        w(f"free{p}, done{p}, res{p}, iss{p} = free[{p}], done[{p}], resolved[{p}], issued[{p}]")


def _save(w: _Writer, pipes: list[int]) -> None:
    for p in pipes:
        w(f"free[{p}], done[{p}], resolved[{p}], issued[{p}] = free{p}, done{p}, res{p}, iss{p}")


def _leave(w: _Writer, prepared: Prepared, target: int, cycles: int) -> None:
    """Return to the driver for bundle `target`, `cycles` later (the pipes' locals are saved). Before a
    GM transfer, when another core would book earlier (see `_block`), return ~target."""
    pipes = prepared.gm_pipes[target] if target < len(prepared.bundles) else ()
    if not pipes:
        w(f"return {target}, t + {cycles}, stall_s, count")
        return
    w(f"t += {cycles}")
    w("key = UNBOUNDED  # GM is booked in time order across cores")
    for p in pipes:
        w(f"if not q{p}:")
        w(f"    s = free[{p}] if free[{p}] > t else t")
        w("    if s < key:")
        w("        key = s")
    w("if key > sync[0]:")
    w("    sync[1] = key")
    w(f"    return {~target}, t, stall_s, count")
    w(f"return {target}, t, stall_s, count")


def _scalar(w: _Writer, namespace: dict[str, Any], prepared: Prepared, scalar: ScalarStep, penalty: int,
            pipes: list[int]) -> None:
    lowered = scalar.lowered
    source = lowered.source.replace("C[", f"C{scalar.index}[")
    if lowered.consts:
        namespace[f"C{scalar.index}"] = lowered.consts
    w("try:")
    if lowered.target is None:
        w(f"    {source}")
    else:
        w(f"    taken = {source}")
    w("except SCALAR_ERRORS as exc:")
    w(f"    raise run._scalar_error(SCALARS[{scalar.index}], exc) from None")
    if lowered.target is not None:
        w("if taken:")
        w.indent()
        _save(w, pipes)
        w("if count > max_instructions:  # every loop branches: checked here and at the end")
        w("    raise run._too_many(count)")
        _leave(w, prepared, lowered.target, 1 + penalty)
        w.indent(-1)


def _operands(op: Op) -> list[str] | None:
    """The expressions of the op's resolved operands over `R` and `K{index}` (its non-integer
    constants), or None for a rule with its own resolver."""
    if getattr(op.resolve, "instr", None) is not op.instr:
        return None
    parts, _ = resolver_parts(op.instr)
    return [part.replace("C[", f"K{op.index}[") for part in parts]


def _constant_key(op: Op) -> str | None:
    """The expression of the op's plan-cache key (its operands, but the GM address if it has one) if
    that key is constant, else None. A run then looks its plan up once."""
    parts = _operands(op)
    if parts is None:
        return None
    key = [part for k, part in enumerate(parts) if k != op.gm_pos]
    if any("R[" in part for part in key):
        return None
    return f"({', '.join(key)},)"


def _issue_args(namespace: dict[str, Any], op: Op) -> str:
    """The expression of the op's resolved operands, inlining the rule's generated resolver."""
    parts = _operands(op)
    if parts is None:  # a rule with its own resolver
        namespace[f"RESOLVE{op.index}"] = op.resolve
        return f"RESOLVE{op.index}(R)"
    consts = resolver_parts(op.instr)[1]
    if consts:
        namespace[f"K{op.index}"] = tuple(consts)
    return f"({', '.join(parts)},)"


def _work(w: _Writer, namespace: dict[str, Any], op: Op, depth: int) -> None:
    p, i, g = op.pipe, op.index, op.gm_pos
    args = _issue_args(namespace, op)
    key = _constant_key(op)
    parts = _operands(op)
    # a GM instruction's plan key (its operands but the address) built directly; the full operand tuple
    # only where a queued instruction or a plan cache miss needs it
    shifted_key = key is None and g >= 0 and parts is not None
    if shifted_key:
        w(f"addr = {parts[g]}")
        w(f"key = ({', '.join(part for k, part in enumerate(parts) if k != g)},)")
    elif key is None:
        w(f"a = {args}")
    elif g >= 0:
        w(f"addr = {parts[g]}")
    w(f"if q{p}:  # behind a blocked wait_flag")
    w(f"    q{p}.append((OPS[{i}], {'a' if key is None and not shifted_key else args}, t))")
    w("else:")
    w.indent()
    w(f"start = free{p} if free{p} > t else t")
    if key is not None:  # looked up once per run
        w(f"plan = plan{i}")
        w("if plan is None:")
        w(f"    plan = plan{i} = plans{i}.get(KEY{i})")
        w("    if plan is None:")
        new = f"new_plan(OPS[{i}], KEY{i})" if g < 0 else f"new_shifted(OPS[{i}], {args}, KEY{i})"
        w(f"        plan = plan{i} = {new}")
    if g < 0:
        if key is None:
            w(f"plan = plans{i}.get(a)")
            w("if plan is None:")
            w(f"    plan = new_plan(OPS[{i}], a)")
        w("accesses, occupancy, latency, xfer, port = plan")
    else:  # the plan for these operands at GM address 0, shifted to the address
        if shifted_key:
            w(f"plan = plans{i}.get(key)")
            w("if plan is None:")
            w(f"    plan = new_shifted(OPS[{i}], {args}, key)")
        elif key is None:
            w(f"addr = a[{g}]")
            w(f"key = a[:{g}] + a[{g + 1}:]")
            w(f"plan = plans{i}.get(key)")
            w("if plan is None:")
            w(f"    plan = new_shifted(OPS[{i}], a, key)")
        w("accesses, occupancy, latency, xfer, port, glo, ghi, gwrite, size, xaddr, rows = plan")
        w("if glo != ghi:")
        w(f"    region = regions[{i}]")
        w("    if region is None or addr + glo < region.start or addr + ghi > region.end:")
        w(f"        region = region_of(OPS[{i}], addr + glo, addr + ghi, gwrite)")
        s = op.setup  # the GM side starts after the command's set-up
        at, plus = (f"start + {s}", f"{s} + ") if s else ("start", "")
        w("    rstart = region.start")
        w("    if size:  # one contiguous run of bytes")
        w(f"        moved = {plus}transfer_block({at}, xaddr + addr - rstart, size, port, rstart << 40, gwrite)")
        w("    elif rows is not None:  # rows of contiguous bytes")
        w(f"        moved = {plus}transfer_rows({at}, xaddr + addr - rstart, rows, port, rstart)")
        w("    else:")
        w(f"        moved = {plus}transfer({at}, xfer, port, addr - rstart, rstart)")
        w("else:  # nothing in GM, or a gather/scatter, whose cost does not depend on addresses")
        w(f"    moved = {plus}transfer({at}, xfer, port)")
        w("if moved > occupancy:")
        w("    occupancy = moved")
    w(f"free{p} = start + occupancy")
    w(f"complete = free{p} + latency")
    w(f"if complete > done{p}:")
    w(f"    done{p} = complete")
    w(f"busy[{p}] += occupancy")
    w(f"icyc[{i}] += occupancy")
    _book(w, p, depth)
    w.indent(-1)


def _book(w: _Writer, p: int, depth: int) -> None:
    w(f"st{p}[res{p} % {depth}] = start")
    w(f"res{p} += 1")


def _set(w: _Writer, op: Op, depth: int, pipes: list[int]) -> None:
    p, f = op.pipe, op.flag
    w(f"if sets[{f}] > waits[{f}]:")
    w(f"    raise run._set_twice(OPS[{op.index}])")
    w(f"sets[{f}] += 1")
    w(f"if q{p}:")
    w(f"    q{p}.append((OPS[{op.index}], None, t))")
    w("else:")
    w.indent()
    w(f"start = free{p} = free{p} if free{p} > t else t")
    w(f"if start > done{p}:")
    w(f"    done{p} = start")
    w(f"tok{f}.append(done{p})")
    _book(w, p, depth)
    w(f"if q{op.dst}:  # the flag may unblock that pipe: the run resolves its queue on its lists")
    w.indent()
    _save(w, pipes)
    w(f"advance({op.dst})")
    _load(w, pipes)
    w.indent(-2)


def _wait(w: _Writer, op: Op, depth: int) -> None:
    p, f = op.pipe, op.flag
    w(f"waits[{f}] += 1")
    w(f"if q{p} or not tok{f}:")
    w(f"    q{p}.append((OPS[{op.index}], None, t))")
    w("else:")
    w.indent()
    w(f"base = free{p} if free{p} > t else t")
    w(f"start = tok{f}.popleft()")
    w("if base > start:")
    w("    start = base")
    w(f"stall[{p}] += start - base")
    w(f"free{p} = start")
    w(f"if start > done{p}:")
    w(f"    done{p} = start")
    _book(w, p, depth)
    w.indent(-1)


def source(prepared: Prepared, spec: MachineSpec, bounded: bool = True) -> str:
    """The generated Python source for a prepared program, for reading and debugging."""
    return generate(prepared, spec, bounded)[0]


class CompiledProgram(NamedTuple):
    """A program compiled to one generated Python function per basic block, and each block's scalar instructions."""
    bind: Callable[..., list]  # see `generate`
    block_scalars: tuple[tuple[int, ...], ...]  # per block, its scalar instructions' indices


def compiled(prepared: Prepared, spec: MachineSpec, bounded: bool) -> CompiledProgram:
    """The program compiled to blocks (with or without a max_cycles bound), generated on first use and
    kept on `prepared` (which belongs to one machine)."""
    program = prepared.compiled.get(f"blocks, bounded={bounded}")
    if program is None:
        text, namespace = generate(prepared, spec, bounded)
        code = compile(text, f"<blocks of kernel {prepared.program.name}>", "exec")
        exec(code, namespace)  # noqa: S102 - our own text: numbers, identifiers and ISA opcode names
        starts = block_starts(prepared)
        bundles = prepared.bundles
        scalars = tuple(tuple(bundles[pc].scalar.index for pc in range(first, end) if bundles[pc].scalar is not None)
                        for first, end in zip(starts, starts[1:] + [len(bundles)]))
        program = prepared.compiled[f"blocks, bounded={bounded}"] = CompiledProgram(namespace["bind"], scalars)
    return program
