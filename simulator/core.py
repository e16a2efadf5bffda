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

from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from isa import MachineSpec
from simulator.errors import DeadlockError, FlagError, OutOfBounds, RaceError, SimError, context, describe
from simulator.gm import GlobalMemory, GmXfer
from simulator.memory import CoreMemory, GmArgs
from simulator.ops import PIPE_NAMES, Plan
from simulator.options import SimOptions
from simulator.prepare import NPIPES, S_PIPE, SET, WAIT, WORK, Op, Prepared
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
    plans: list[dict[tuple, Plan]] = field(default_factory=list)  # checked plans by operands, per instruction
    trace: list[tuple[int, int, int, int, int, tuple[int, int, int]]] | None = None
    instructions: int = 0


class _ScalarContext:
    """What scalar steps read: program ids, grid, arguments; and where device_print goes."""

    __slots__ = ("pid", "grid", "args", "prints")

    def __init__(self, pid: tuple[int, int, int], launch: Launch) -> None:
        self.pid, self.grid, self.args, self.prints = pid, launch.grid, launch.arg_values, launch.prints

    def print(self, fmt: str, value: Any) -> None:
        self.prints.append(f"pid {self.pid} {fmt} {value}")


def run_program(launch: Launch, core: int, pid: tuple[int, int, int], start: int, stats: CoreStats,
                memory: CoreMemory | None) -> int:
    """Simulate one program on `core` from cycle `start`; return when the core is free again."""
    return _ProgramRun(launch, core, pid, start, stats, memory).run()


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
        self.tokens: defaultdict[int, deque] = defaultdict(deque)  # raised flags: (time, vector clock)
        self.sets = [0] * self.prep.nflags
        self.waits = [0] * self.prep.nflags
        self.busy = [0] * NPIPES
        self.stall = [0] * NPIPES
        self.stats = stats
        self.plans = launch.plans
        self.gm = launch.gm
        self.instr_cycles = launch.instr_cycles
        opts = launch.options
        self.functional = opts.functional and memory is not None
        self.trace = launch.trace
        self.races = (RaceDetector(NPIPES, self.prep.active_pipes, PIPE_NAMES, lambda op: describe(op.instr))
                      if opts.detect_races else None)

    # -- issue ---------------------------------------------------------------------------------------
    def run(self) -> int:
        prep, launch = self.prep, self.launch
        bundles = prep.bundles
        nbundles = len(bundles)
        regs: list[Any] = [0] * launch.spec.scalar.registers
        scalar_ctx = _ScalarContext(self.pid, launch)
        depth, penalty = self.depth, launch.spec.scalar.branch_penalty
        max_cycles = launch.options.max_cycles
        issued, resolved, starts, queues = self.issued, self.resolved, self.starts, self.queues
        sets, waits = self.sets, self.waits
        instr_cycles = launch.instr_cycles
        work, raise_flag, wait = self._work, self._raise_flag, self._wait
        t = self.start
        pc = 0
        count = 0
        stall_s = busy_s = 0
        while pc < nbundles:
            bundle = bundles[pc]
            ops = bundle.ops
            for op in ops:  # a full queue stalls issue until its oldest instruction starts
                p = op.pipe
                k = issued[p]
                if k >= depth:
                    if resolved[p] <= k - depth:
                        raise self._deadlock(f"issue is stalled at {describe(op.instr)}: the {PIPE_NAMES[p]} "
                                             f"queue is full ({depth} instructions) and its oldest can never start")
                    s = starts[p][k % depth]
                    if s > t:
                        stall_s += s - t
                        t = s
            scalar = bundle.scalar
            if scalar is not None and scalar.barrier:
                if any(queues):
                    raise self._deadlock(f"{describe(scalar.instr)} waits for every pipe to drain")
                drained = max(self.done)
                if drained > t:
                    stall_s += drained - t
                    t = drained
                if self.races is not None:
                    self.races.barrier()
            if max_cycles is not None and t > max_cycles:
                raise SimError(f"{self._where()}: passed max_cycles={max_cycles} at bundle {pc} (cycle {t}); "
                               f"a runaway loop, or raise SimOptions.max_cycles")
            for op in ops:
                p = op.pipe
                kind = op.kind
                if kind == WORK:
                    args = op.resolve(regs)
                else:
                    args = None
                    f = op.flag
                    if kind == SET:
                        if sets[f] - waits[f] > 0:
                            raise FlagError(f"{describe(op.instr)} ({self._where()}): flag "
                                            f"{prep.flag_name(f, launch.spec.sync.event_ids)} is already set "
                                            f"and not yet consumed by a wait_flag; wait before setting it again")
                        sets[f] += 1
                    else:
                        waits[f] += 1
                issued[p] += 1
                q = queues[p]
                if q:  # behind a blocked wait_flag
                    q.append((op, args, t))
                elif kind == WORK:
                    work(op, args, t)
                elif kind == SET:
                    raise_flag(op, t)
                elif not wait(op, t):
                    q.append((op, args, t))
            if scalar is not None:
                busy_s += 1
                instr_cycles[scalar.index] += 1
                if scalar.step is not None:
                    try:
                        target = scalar.step(regs, scalar_ctx)
                    except _SCALAR_ERRORS as exc:
                        raise SimError(f"{describe(scalar.instr)} ({self._where()}): {type(exc).__name__}: "
                                       f"{exc}") from None
                    if target is not None:
                        count += bundle.size
                        t += 1 + penalty
                        pc = target
                        continue
            count += bundle.size
            t += 1
            pc += 1
        return self._finish(t, count, busy_s, stall_s)

    def _finish(self, t: int, count: int, busy_s: int, stall_s: int) -> int:
        if any(self.queues):
            raise self._deadlock("the program ended with instructions still blocked")
        events = self.launch.spec.sync.event_ids
        for f, (s, w) in enumerate(zip(self.sets, self.waits)):
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
        self.tokens[op.flag].append((done[p], self.races.snapshot(p) if self.races is not None else None))
        self._book(p, start)
        if self.trace is not None:
            self.trace.append((self.core, p, start, 0, op.index, self.pid))
        if self.queues[op.dst]:
            self._advance(op.dst)

    def _wait(self, op: Op, issued_at: int) -> bool:
        """wait_flag: start once the matching set_flag's flag is up; False if it is not up yet."""
        tokens = self.tokens.get(op.flag)
        if not tokens:
            return False
        p = op.pipe
        free, done = self.free, self.done
        base = issued_at if issued_at > free[p] else free[p]
        raised, clock = tokens.popleft()
        start = raised if raised > base else base
        self.stall[p] += start - base
        free[p] = start
        if start > done[p]:
            done[p] = start
        if self.races is not None:
            self.races.join(p, clock)
        self._book(p, start)
        if self.trace is not None:
            self.trace.append((self.core, p, base, start - base, op.index, self.pid))
        return True

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
        plan = plans.get(args)
        if plan is None:
            plan = self._plan(op, args)
            if len(plans) > _PLAN_CACHE:
                plans.clear()
            plans[args] = plan
        accesses, occupancy, latency, xfer, port = plan
        if self.races is not None:
            race = self.races.access(p, accesses, op)
            if race is not None:
                raise RaceError(f"{self._where()}: {race}")
        if xfer is not None:
            moved = self.gm.transfer(start, xfer, port)
            if moved > occupancy:
                occupancy = moved
        if self.functional:
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

    def _plan(self, op: Op, args: tuple) -> Plan:
        """The instruction's plan for these operands, with every access bounds-checked."""
        try:
            plan = op.plan(args)
        except SimError as exc:
            raise type(exc)(f"{describe(op.instr)} ({self._where()}): {exc}") from None
        gm_args = self.launch.gm_args
        for space, lo, hi, write in plan.accesses:
            if hi <= lo:
                continue
            if space == "gm":
                region = gm_args.find(lo, hi)
                if region is None:
                    raise OutOfBounds(f"{describe(op.instr)} ({self._where()}): {gm_args.describe_miss(lo, hi)}")
                if write and not region.writable:
                    raise OutOfBounds(f"{describe(op.instr)} ({self._where()}): writes argument {region.name}, "
                                      f"a read-only array")
                x = plan.xfer
                if x is not None and not x.scattered:
                    # cost relative to the array's start, as if it were aligned to every burst and line,
                    # so cycles never depend on where numpy put it
                    x = GmXfer(x.addr - region.start, x.rows, x.cols, x.rs, x.cs, x.itemsize, x.write, 0, region.start)
                    plan = Plan(plan.accesses, plan.occupancy, plan.latency, x, plan.port)
            elif lo < 0 or hi > self.sizes[space]:
                raise OutOfBounds(f"{describe(op.instr)} ({self._where()}): accesses {space} bytes [{lo}, {hi}) "
                                  f"but {space} has {self.sizes[space]} bytes (valid addresses 0..{self.sizes[space] - 1})")
        return plan

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

