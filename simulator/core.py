"""One program on one core: in-order VLIW issue, per-pipe in-order timing, flags and deadlocks.

The scalar unit issues one bundle per cycle; scalar instructions run at issue, every other
instruction is issued with its registers resolved and appended to its pipe's queue. Instruction
times are resolved eagerly and algebraically (start = max(issue, pipe free, flag raised)), so a
pipe only ever waits on a wait_flag whose set_flag has not resolved yet. Issue needs the start time
of the instruction `queue_depth` places back on the same pipe (the queue is full until it starts)
and a barrier needs every pipe drained; if that is unknown after eager resolution, nothing can ever
make it known: that is a deadlock, reported with what each blocked pipe waits for.

Functional effects run when an instruction's start is resolved, which respects every flag and
barrier, so a race-free program computes what it would on the machine.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Generator

from isa import MachineSpec
from simulator import codegen
from simulator.errors import DeadlockError, FlagError, OutOfBounds, RaceError, SimError, context, describe
from simulator.gm import GlobalMemory, contiguous_bytes
from simulator.memory import CoreMemory, GmArgs, GmRegion
from simulator.ops import PIPE_NAMES, Plan
from simulator.options import SimOptions
from simulator.prepare import NPIPES, S_PIPE, SET, UNBOUNDED, WAIT, WORK, Op, Prepared, ScalarStep
from simulator.races import RaceDetector

# a scalar step's Python errors that mean a bad program, not a simulator bug
_PLAN_CACHE = 256  # distinct operand tuples remembered per instruction
_SCALAR_ERRORS = (ZeroDivisionError, TypeError, OverflowError, ValueError, IndexError)


@dataclass
class CoreStats:
    """One core's totals over a launch: busy (occupancy) and stall cycles per pipe, programs run."""

    core: int
    programs: list[tuple[int, int, int]] = field(default_factory=list)
    busy: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PIPE_NAMES, 0))
    stall: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PIPE_NAMES, 0))
    free_at: int = 0  # when its last program finished


@dataclass
class Launch:
    """What every program of one launch shares."""

    spec: MachineSpec
    options: SimOptions
    prepared: Prepared
    gm: GlobalMemory
    gm_args: GmArgs
    arg_values: list[Any]
    grid: tuple[int, int, int]
    prints: list[str] = field(default_factory=list)
    instr_cycles: list[int] = field(default_factory=list)  # busy cycles per instruction index
    plans: list[dict[tuple, Any]] = field(default_factory=list)  # checked plans by operands, per instruction
    regions: list[GmRegion | None] = field(default_factory=list)  # last GM argument each instruction touched
    trace: list[tuple[int, int, int, int, int, tuple[int, int, int]]] | None = None
    # with the trace, why a pipe waited besides a wait_flag: (core, pipe, start, cycles, reason, instr index, pid)
    stalls: list[tuple[int, int, int, int, str, int, tuple[int, int, int]]] | None = None
    instructions: int = 0
    # [horizon, key]: the device sets the horizon (the earliest time another core waits to book GM at) before
    # resuming a program; a program about to book GM later than that stores the time in key and yields
    sync: list[int] = field(default_factory=lambda: [UNBOUNDED, UNBOUNDED])
    # timing-only mode with gathers or scatters (simulator.device): the GM bytes each write replaced, oldest first
    undo: list[tuple[Any, Any]] | None = None


class _ScalarContext:
    """What scalar steps read: program ids, grid, arguments; and where device_print goes."""

    __slots__ = ("pid", "grid", "args", "prints")

    def __init__(self, pid: tuple[int, int, int], launch: Launch) -> None:
        self.pid, self.grid, self.args, self.prints = pid, launch.grid, launch.arg_values, launch.prints

    def print(self, fmt: str, value: Any) -> None:
        self.prints.append(f"pid {self.pid} {fmt} {value}")


def run_program(launch: Launch, core: int, pid: tuple[int, int, int], start: int, stats: CoreStats,
                memory: CoreMemory | None) -> Generator[int, None, int]:
    """Simulate one program on `core` from cycle `start`, as a generator: before a bundle with a GM
    transfer that would start after `launch.sync[0]` (the horizon), it yields that start time, so the
    device can book other cores' earlier transfers first (simulator.device). Returns (as the
    StopIteration value) when the core is free again."""
    return _ProgramRun(launch, core, pid, start, stats, memory).run()


def gm_start(pipes: tuple[int, ...], queues: list[deque], free: list[int], t: int) -> int:
    """When the earliest GM transfer of a bundle issued at `t` on `pipes` would start: on a pipe whose
    queue is empty, at max(t, the pipe's free time); a pipe with queued work books later, when it
    resolves (UNBOUNDED if every pipe is busy)."""
    key = UNBOUNDED
    for p in pipes:
        if not queues[p]:
            s = free[p] if free[p] > t else t
            if s < key:
                key = s
    return key


class _ProgramRun:
    def __init__(self, launch: Launch, core: int, pid: tuple[int, int, int], start: int, stats: CoreStats,
                 memory: CoreMemory | None) -> None:
        self.launch = launch
        self.prep = launch.prepared
        self.core, self.pid, self.start = core, pid, start
        self.memory = memory
        if memory is not None:
            memory.print = _ScalarContext(pid, launch).print
        spec = launch.spec
        self.depth = spec.scalar.queue_depth
        self.sizes = {s: spec.buffer_bytes(s) for s in ("l1", "l0a", "l0b", "l0c", "ub")}
        self.queues: list[deque] = [deque() for _ in range(NPIPES)]
        self.free = [start] * NPIPES  # when each pipe can start its next instruction
        self.done = [start] * NPIPES  # last completion on each pipe (completions are in order)
        self.issued = [0] * NPIPES
        self.resolved = [0] * NPIPES
        self.starts = [[0] * self.depth for _ in range(NPIPES)]  # start times by issue number % depth
        # per flag the program uses: the times it was raised at and, with race detection, the vector clocks
        # handed to its wait_flags (in step: a flag's tokens and clocks are appended and popped together)
        self.tokens: list[deque] = [None] * self.prep.nflags  # type: ignore[list-item]
        for f in self.prep.flags:
            self.tokens[f] = deque()
        self.races = (RaceDetector(NPIPES, self.prep.active_pipes, PIPE_NAMES, lambda op: describe(op.instr))
                      if launch.options.detect_races else None)
        self.clocks = [deque() if tokens is not None else None for tokens in self.tokens] if self.races else None
        self.sets = [0] * self.prep.nflags
        self.waits = [0] * self.prep.nflags
        self.busy = [0] * NPIPES
        self.stall = [0] * NPIPES
        self.stats = stats
        self.plans = launch.plans
        self.gm = launch.gm
        self.instr_cycles = launch.instr_cycles
        self.functional = memory is not None  # effects run: functional mode, or lanes to check (simulator.device)
        self.undo = launch.undo
        self.trace = launch.trace

    # -- issue ---------------------------------------------------------------------------------------
    def run(self) -> Generator[int, None, int]:
        """The program's run as a generator (see `run_program`): the generated code for timing only
        without races or trace, else the general issue loop."""
        if self.races is None and self.trace is None and not self.functional:
            return self._run_blocks()
        return self._run_general()

    def _run_general(self) -> Generator[int, None, int]:
        prep, launch = self.prep, self.launch
        bundles = prep.bundles
        nbundles = len(bundles)
        regs: list[Any] = [0] * launch.spec.scalar.registers
        scalar_ctx = _ScalarContext(self.pid, launch)
        depth, penalty = self.depth, launch.spec.scalar.branch_penalty
        opts = launch.options
        max_cycles = UNBOUNDED if opts.max_cycles is None else opts.max_cycles
        max_instructions = UNBOUNDED if opts.max_instructions is None else opts.max_instructions
        issued, resolved, starts, queues = self.issued, self.resolved, self.starts, self.queues
        free, done, stall, tokens, clocks = self.free, self.done, self.stall, self.tokens, self.clocks
        sets, waits = self.sets, self.waits
        races, trace, core, pid = self.races, self.trace, self.core, self.pid
        instr_cycles = launch.instr_cycles
        work, advance = self._work, self._advance
        gm_pipes, sync = prep.gm_pipes, launch.sync
        t = self.start
        pc = 0
        count = 0
        stall_s = busy_s = 0
        while pc < nbundles:
            gp = gm_pipes[pc]
            if gp:  # GM is booked in time order across cores: wait until no other core would book earlier
                key = gm_start(gp, queues, free, t)
                if key > sync[0]:
                    sync[1] = key
                    yield key
            scalar, ops, size = bundles[pc]
            for op in ops:  # a full queue stalls issue until its oldest instruction starts
                p = op.pipe
                k = issued[p]
                if k >= depth:
                    if resolved[p] <= k - depth:
                        raise self._queue_full(op)
                    s = starts[p][k % depth]
                    if s > t:
                        if trace is not None:
                            self._note_stall(S_PIPE, t, s - t, "queue full", op.index)
                        stall_s += s - t
                        t = s
            if scalar is not None and scalar.barrier:
                if any(queues):
                    raise self._barrier_blocked(scalar)
                drained = max(self.done)
                if drained > t:
                    if trace is not None:
                        self._note_stall(S_PIPE, t, drained - t, "barrier", scalar.index)
                    stall_s += drained - t
                    t = drained
                if self.races is not None:
                    self.races.barrier()
            if t > max_cycles:
                raise self._past_max_cycles(pc, t)
            for op in ops:
                p = op.pipe
                kind = op.kind
                q = queues[p]
                issued[p] += 1
                if kind == WORK:
                    args = op.resolve(regs)
                    if q:  # behind a blocked wait_flag
                        q.append((op, args, t))
                    else:
                        work(op, args, t)
                elif kind == SET:
                    f = op.flag
                    if sets[f] > waits[f]:
                        raise self._set_twice(op)
                    sets[f] += 1
                    if q:
                        q.append((op, None, t))
                        continue
                    # _raise_flag, inlined: most instructions of a pipelined loop are flags
                    start = t if t > free[p] else free[p]
                    free[p] = start
                    d = done[p]
                    if start > d:
                        done[p] = d = start
                    tokens[f].append(d)
                    if races is not None:
                        clocks[f].append(races.snapshot(p))
                    starts[p][resolved[p] % depth] = start
                    resolved[p] += 1
                    if trace is not None:
                        trace.append((core, p, start, 0, op.index, pid))
                    if queues[op.dst]:
                        advance(op.dst)
                else:
                    f = op.flag
                    waits[f] += 1
                    raised = tokens[f]
                    if q or not raised:
                        q.append((op, None, t))
                        continue
                    # _wait, inlined
                    base = t if t > free[p] else free[p]
                    at = raised.popleft()
                    start = at if at > base else base
                    stall[p] += start - base
                    free[p] = start
                    if start > done[p]:
                        done[p] = start
                    if races is not None:
                        races.join(p, clocks[f].popleft())
                    starts[p][resolved[p] % depth] = start
                    resolved[p] += 1
                    if trace is not None:
                        trace.append((core, p, base, start - base, op.index, pid))
            count += size
            if scalar is not None:
                busy_s += 1
                instr_cycles[scalar.index] += 1
                if scalar.step is not None:
                    try:
                        target = scalar.step(regs, scalar_ctx)
                    except _SCALAR_ERRORS as exc:
                        raise self._scalar_error(scalar, exc) from None
                    if target is not None:
                        if count > max_instructions:  # every loop branches: checked here and at the end
                            raise self._too_many(count)
                        t += 1 + penalty
                        pc = target
                        continue
            t += 1
            pc += 1
        return self._finish(t, count, busy_s, stall_s)

    def _run_blocks(self) -> Generator[int, None, int]:
        """`run` for timing only without races or trace, through the program compiled to one function per
        basic block (simulator.codegen): the same steps in the same order, without per-instruction dispatch."""
        launch = self.launch
        opts = launch.options
        program = codegen.compiled(self.prep, launch.spec, opts.max_cycles is not None)
        hits = [0] * len(program.block_scalars)
        blocks = program.bind(self, [0] * launch.spec.scalar.registers, _ScalarContext(self.pid, launch), hits,
                              UNBOUNDED if opts.max_cycles is None else opts.max_cycles,
                              UNBOUNDED if opts.max_instructions is None else opts.max_instructions)
        nbundles = len(blocks)
        sync = launch.sync
        t, stall_s, count, pc = self.start, 0, 0, 0
        gp = self.prep.gm_pipes[0]
        if gp:  # GM is booked in time order across cores (as in _run_general); later blocks check on leaving
            key = gm_start(gp, self.queues, self.free, t)
            if key > sync[0]:
                sync[1] = key
                yield key
        while pc < nbundles:
            pc, t, stall_s, count = blocks[pc](t, stall_s, count)
            if pc < 0:  # the next block's GM transfer would start after the horizon: other cores book first
                pc = ~pc
                yield sync[1]
        busy_s = 0
        instr_cycles = self.instr_cycles
        for scalars, n in zip(program.block_scalars, hits):
            if n:
                busy_s += n * len(scalars)
                for i in scalars:
                    instr_cycles[i] += n
        return self._finish(t, count, busy_s, stall_s)

    def _queue_full(self, op: Op) -> DeadlockError:
        return self._deadlock(f"issue is stalled at {describe(op.instr)}: the {PIPE_NAMES[op.pipe]} queue is "
                              f"full ({self.depth} instructions) and its oldest can never start")

    def _barrier_blocked(self, scalar: ScalarStep) -> DeadlockError:
        return self._deadlock(f"{describe(scalar.instr)} waits for every pipe to drain")

    def _past_max_cycles(self, pc: int, t: int) -> SimError:
        return SimError(f"{self._where()}: passed max_cycles={self.launch.options.max_cycles} at bundle {pc} "
                        f"(cycle {t}); a runaway loop, or raise SimOptions.max_cycles")

    def _set_twice(self, op: Op) -> FlagError:
        return FlagError(f"{describe(op.instr)} ({self._where()}): flag "
                         f"{self.prep.flag_name(op.flag, self.launch.spec.sync.event_ids)} is already set "
                         f"and not yet consumed by a wait_flag; wait before setting it again")

    def _scalar_error(self, scalar: ScalarStep, exc: Exception) -> SimError:
        return SimError(f"{describe(scalar.instr)} ({self._where()}): {type(exc).__name__}: {exc}")

    def _too_many(self, count: int) -> SimError:
        bound = self.launch.options.max_instructions
        return SimError(f"kernel {self.prep.program.name} ({self._where()}): executed {count} instructions, past "
                        f"SimOptions.max_instructions={bound} (a runaway loop?); pass "
                        f"SimOptions(max_instructions=...) a larger bound, or None for no bound")

    def _finish(self, t: int, count: int, busy_s: int, stall_s: int) -> int:
        bound = self.launch.options.max_instructions
        if bound is not None and count > bound:
            raise self._too_many(count)
        if any(self.queues):
            raise self._deadlock("the program ended with instructions still blocked")
        events = self.launch.spec.sync.event_ids
        for f in self.prep.flags:
            s, w = self.sets[f], self.waits[f]
            if s > w:
                raise FlagError(f"{self._where()}: the program ended with flag {self.prep.flag_name(f, events)} "
                                f"set and never waited on ({s} set_flag, {w} wait_flag); every set needs its wait")
        end = max(t, *self.done)
        max_cycles = self.launch.options.max_cycles
        if max_cycles is not None and end > max_cycles:
            raise SimError(f"{self._where()}: the program finishes at cycle {end}, past max_cycles={max_cycles}")
        self.busy[S_PIPE] += busy_s
        self.stall[S_PIPE] += stall_s
        stats = self.stats
        for p, name in enumerate(PIPE_NAMES):
            stats.busy[name] += self.busy[p]
            stats.stall[name] += self.stall[p]
        stats.programs.append(self.pid)
        stats.free_at = end
        self.launch.instructions += count
        return end

    # -- per-pipe timing -----------------------------------------------------------------------------
    def _advance(self, p: int) -> None:
        """Resolve pipe p's queued instructions in order until one waits on an unraised flag."""
        q = self.queues[p]
        while q:
            op, args, issued_at = q[0]
            kind = op.kind
            if kind == WAIT:
                if not self._wait(op, issued_at):
                    return
                q.popleft()
                continue
            q.popleft()  # before resolving: raising a flag may re-enter this pipe's queue
            if kind == WORK:
                self._work(op, args, issued_at)
            else:
                self._raise_flag(op, issued_at)

    def _raise_flag(self, op: Op, issued_at: int) -> None:
        """set_flag: the flag rises when every earlier instruction of its pipe has completed."""
        p = op.pipe
        free, done = self.free, self.done
        start = issued_at if issued_at > free[p] else free[p]
        free[p] = start
        if start > done[p]:
            done[p] = start
        self.tokens[op.flag].append(done[p])
        if self.races is not None:
            self.clocks[op.flag].append(self.races.snapshot(p))
        self._book(p, start)
        if self.trace is not None:
            self.trace.append((self.core, p, start, 0, op.index, self.pid))
        if self.queues[op.dst]:
            self._advance(op.dst)

    def _wait(self, op: Op, issued_at: int) -> bool:
        """wait_flag: start once the matching set_flag's flag is up; False if it is not up yet."""
        tokens = self.tokens[op.flag]
        if not tokens:
            return False
        p = op.pipe
        free, done = self.free, self.done
        base = issued_at if issued_at > free[p] else free[p]
        raised = tokens.popleft()
        start = raised if raised > base else base
        self.stall[p] += start - base
        free[p] = start
        if start > done[p]:
            done[p] = start
        if self.races is not None:
            self.races.join(p, self.clocks[op.flag].popleft())
        self._book(p, start)
        if self.trace is not None:
            self.trace.append((self.core, p, base, start - base, op.index, self.pid))
        return True

    def _note_stall(self, p: int, start: int, cycles: int, reason: str, index: int) -> None:
        """With the trace on: why pipe p (S: issue) waited `cycles` from `start` besides a wait_flag, for
        profiles. "bandwidth" is a GM transfer's time past its own pipe's rate (shared L2/HBM)."""
        self.launch.stalls.append((self.core, p, start, cycles, reason, index, self.pid))

    def _book(self, p: int, start: int) -> None:
        """Remember a start time for the queue-depth rule."""
        resolved = self.resolved
        self.starts[p][resolved[p] % self.depth] = start
        resolved[p] += 1

    def _work(self, op: Op, args: tuple, issued_at: int) -> None:
        """Start a pipe instruction: check its accesses, cost it, run its effect, book its times."""
        p = op.pipe
        free = self.free
        start = issued_at if issued_at > free[p] else free[p]
        plans = self.plans[op.index]
        g = op.gm_pos
        if g < 0:
            plan = plans.get(args)
            if plan is None:
                plan = self._new_plan(op, args)
            accesses, occupancy, latency, xfer, port = plan
            if self.races is not None:
                self._check_race(p, accesses, op)
        else:  # the plan for these operands at GM address 0, shifted to the address
            addr = args[g]
            key = args[:g] + args[g + 1:]
            shifted = plans.get(key)
            if shifted is None:
                shifted = self._new_shifted(op, args, key)
            accesses, occupancy, latency, xfer, port, glo, ghi, gwrite, size, xaddr, rows = shifted
            setup = op.setup  # the GM side starts after the command's set-up
            if glo != ghi:
                region = self._region(op, addr + glo, addr + ghi, gwrite)
                if size:
                    moved = setup + self.gm.transfer_block(start + setup, xaddr + addr - region.start, size, port,
                                                           region.start << 40, gwrite)
                elif rows is not None:
                    moved = setup + self.gm.transfer_rows(start + setup, xaddr + addr - region.start, rows, port,
                                                          region.start)
                else:
                    moved = setup + self.gm.transfer(start + setup, xfer, port, addr - region.start, region.start)
            else:  # nothing in GM, or a gather/scatter, whose cost does not depend on addresses
                moved = setup + self.gm.transfer(start + setup, xfer, port)
            if moved > occupancy:
                if self.trace is not None:
                    self._note_stall(p, start + occupancy, moved - occupancy, "bandwidth", op.index)
                occupancy = moved
            if self.races is not None:
                accesses = tuple([(s, lo + addr, hi + addr, w) if s == "gm" else (s, lo, hi, w)
                                  for s, lo, hi, w in accesses])
                if op.gm_spans is not None:
                    accesses += self._lane_accesses(op, args, xfer.write)
                self._check_race(p, accesses, op)
        if self.functional:
            if self.undo is not None and g >= 0 and xfer is not None and xfer.write:
                self._keep_gm(op, args, addr + glo, addr + ghi)
            try:
                op.execute(args, self.memory)
            except SimError as exc:
                raise type(exc)(f"{describe(op.instr)} ({self._where()}): {exc}") from None
        free[p] = start + occupancy
        complete = start + latency + occupancy
        done = self.done
        if complete > done[p]:
            done[p] = complete
        self.busy[p] += occupancy
        self.instr_cycles[op.index] += occupancy
        resolved = self.resolved
        self.starts[p][resolved[p] % self.depth] = start
        resolved[p] += 1
        if self.trace is not None:
            self.trace.append((self.core, p, start, occupancy, op.index, self.pid))

    def _keep_gm(self, op: Op, args: tuple, lo: int, hi: int) -> None:
        """Save the GM bytes a write is about to replace (its span [lo, hi), or a scatter's lanes' runs), for
        timing-only mode to put back at the end of the launch. Bytes outside every argument are left to
        the write's own bounds check."""
        spans = op.gm_spans(args, self.memory) if op.gm_spans is not None else [(lo, hi)]
        for lo, hi in spans:
            region = self.launch.gm_args.find(lo, hi)
            if region is not None:
                data = region.data[lo - region.start:hi - region.start]
                self.undo.append((data, data.copy()))

    def _lane_accesses(self, op: Op, args: tuple, write: bool) -> tuple:
        """The GM bytes a gather or scatter touches, for the race detector: the runs its active lanes cover
        (a program with lanes always runs its effects, see simulator.device)."""
        return tuple(("gm", lo, hi, write) for lo, hi in op.gm_spans(args, self.memory))

    def _check_race(self, p: int, accesses: tuple, op: Op) -> None:
        race = self.races.access(p, accesses, op)
        if race is not None:
            raise RaceError(f"{self._where()}: {race}")

    def _new_plan(self, op: Op, args: tuple) -> Plan:
        """A plan cache miss: plan, check and remember."""
        plans = self.plans[op.index]
        plan = self._plan(op, args)
        if len(plans) > _PLAN_CACHE:
            plans.clear()
        plans[args] = plan
        return plan

    def _new_shifted(self, op: Op, args: tuple, key: tuple) -> tuple:
        """A shifted-plan cache miss, remembered by `key` (the operands but the GM address)."""
        plans = self.plans[op.index]
        shifted = self._shifted_plan(op, args)
        if len(plans) > _PLAN_CACHE:
            plans.clear()
        plans[key] = shifted
        return shifted

    def _plan(self, op: Op, args: tuple) -> Plan:
        """The instruction's plan for these operands, with every access bounds-checked."""
        try:
            plan = op.plan(args)
        except SimError as exc:
            raise type(exc)(f"{describe(op.instr)} ({self._where()}): {exc}") from None
        for space, lo, hi, write in plan.accesses:
            if hi <= lo:
                continue
            if space == "gm":
                self._find_region(op, lo, hi, write)
            elif lo < 0 or hi > self.sizes[space]:
                size = self.sizes[space]
                raise OutOfBounds(f"{describe(op.instr)} ({self._where()}): accesses {space} bytes [{lo}, {hi}) "
                                  f"but {space} has {size} bytes (valid addresses 0..{size - 1})")
        return plan

    def _shifted_plan(self, op: Op, args: tuple) -> tuple:
        """For an instruction with one GM address operand: its checked plan with GM accesses and the
        transfer relative to that address, plus the GM access's bounds [glo, ghi) relative to it
        (equal if it touches no GM bytes) and whether it writes; then, for a transfer that is one
        contiguous run of bytes, its size (`GlobalMemory.transfer_block`; else 0), the transfer's offset
        from that address, and for rows of contiguous bytes their shape (`GlobalMemory.transfer_rows`;
        else None). Rules' plans are translation-invariant in GM addresses."""
        plan = self._plan(op, args)
        addr = args[op.gm_pos]
        glo = ghi = 0
        gwrite = False
        accesses = []
        for space, lo, hi, write in plan.accesses:
            if space == "gm":
                lo, hi = lo - addr, hi - addr
                if hi > lo:
                    glo, ghi, gwrite = lo, hi, write
            accesses.append((space, lo, hi, write))
        x = plan.xfer
        size = xaddr = 0
        rows = None
        if x is not None:
            x = dataclasses.replace(x, addr=x.addr - addr)
            size, xaddr, rows = contiguous_bytes(x), x.addr, self.gm.row_shape(x)
        return tuple(accesses), plan.occupancy, plan.latency, x, plan.port, glo, ghi, gwrite, size, xaddr, rows

    def _region(self, op: Op, lo: int, hi: int, write: bool) -> GmRegion:
        """The argument holding GM bytes [lo, hi), remembered per instruction (checked on a miss)."""
        region = self.launch.regions[op.index]
        if region is not None and region.start <= lo and hi <= region.end and self.launch.gm_args.disjoint:
            return region
        region = self._find_region(op, lo, hi, write)
        self.launch.regions[op.index] = region
        return region

    def _find_region(self, op: Op, lo: int, hi: int, write: bool) -> GmRegion:
        gm_args = self.launch.gm_args
        region = gm_args.find(lo, hi)
        if region is None:
            raise OutOfBounds(f"{describe(op.instr)} ({self._where()}): {gm_args.describe_miss(lo, hi)}")
        if write and not region.writable:
            raise OutOfBounds(f"{describe(op.instr)} ({self._where()}): writes argument {region.name}, "
                              f"a read-only array")
        return region

    # -- errors --------------------------------------------------------------------------------------
    def _where(self) -> str:
        return context(self.core, self.pid)

    def _deadlock(self, what: str) -> DeadlockError:
        events = self.launch.spec.sync.event_ids
        lines = [f"deadlock ({self._where()}): {what}"]
        for p, q in enumerate(self.queues):
            if q:
                op = q[0][0]
                f = op.flag
                lines.append(f"  pipe {PIPE_NAMES[p]} is blocked at {describe(op.instr)}, waiting for flag "
                             f"{self.prep.flag_name(f, events)} ({self.sets[f]} set_flag and {self.waits[f]} "
                             f"wait_flag issued for it; {len(q) - 1} instructions queued behind)")
        return DeadlockError("\n".join(lines))

