"""Persistent grid: each core runs one loop over the logical programs it is given, pipelined across them.

The device dispatches a program to a core only when the core's previous program has drained, so a
grid of short programs (one row each) pays every program's DMA start-up and tail on its own. This
pass wraps the kernel in

    for l in range(pid, total, npid):          # pid, npid: the physical program id and count
        x, y, z = l % gx, l // gx % gy, l // (gx * gy)
        <the kernel, with program_id(a) = (x, y, z)[a] and num_programs(a) = (gx, gy, gz)[a]>

where (gx, gy, gz) is the logical grid, passed as three extra scalar arguments (`GRID_ARGS`), and the
runtime launches min(cores, total) physical programs, one per core. Program l runs on core l mod P,
as the device's in-order dispatch would place uniform programs. Every tile the kernel allocates
belongs to the loop, so software pipelining (`pipeline.py`, `num_stages` deep as `compile_ir`
chooses) can give consecutive programs private copies, and flag insertion (`sync.py`) keeps the
primes of the kernel's own loops outside this one: the loads of program l+P run while program l
computes. The costs are the machine's, only the code changed. Each logical program still sees its
own ids, as in Triton.

A kernel with `device_print` keeps one program per dispatch: its prints name the program ids the
simulator dispatched.
"""

from __future__ import annotations

from npulang.backend.mir import Buffer, Loop, MInstr, Node, VReg, walk

GRID_ARGS = ("grid.x", "grid.y", "grid.z")  # names no Python parameter can have, so no kernel argument clashes
PRINT_OPS = ("print", "vprint")


class PersistentGrid:
    """Wrap the lowered kernel in a per-core loop over logical program ids (see the module docstring)."""

    def __init__(self, nargs: int, num_stages: int) -> None:
        self.nargs = nargs  # the kernel's own arguments; the logical grid follows them
        self.num_stages = num_stages  # pipelining depth across programs

    def apply(self, nodes: list[Node]) -> Loop | None:
        """Rewrite `nodes` in place; returns the loop, or None when the kernel must stay as it is."""
        instrs = list(walk(nodes))
        if any(i.op in PRINT_OPS for i in instrs):
            return None
        loc = next((i.loc for i in instrs if i.loc is not None), None)
        grid = [VReg(f"grid{a}") for a in range(3)]
        phys, nphys, plane, total = VReg("core_pid"), VReg("core_npid"), VReg("plane"), VReg("programs")
        head = [MInstr("pid", {"d": phys, "axis": 0}, loc), MInstr("npid", {"d": nphys, "axis": 0}, loc)]
        head += [MInstr("arg", {"d": g, "index": self.nargs + a}, loc) for a, g in enumerate(grid)]
        head += [MInstr("mul", {"d": plane, "a": grid[0], "b": grid[1]}, loc),
                 MInstr("mul", {"d": total, "a": plane, "b": grid[2]}, loc)]
        lid = VReg("program")
        ids = [VReg("pid_x"), VReg("pid_y"), VReg("pid_z")]
        row = VReg("pid_xy")
        axes = {i.args["axis"] for i in instrs if i.op == "pid"}
        ids_code = [MInstr("rem", {"d": ids[0], "a": lid, "b": grid[0]}, loc)] if 0 in axes else []
        if 1 in axes:
            ids_code += [MInstr("div", {"d": row, "a": lid, "b": grid[0]}, loc),
                         MInstr("rem", {"d": ids[1], "a": row, "b": grid[1]}, loc)]
        if 2 in axes:
            ids_code.append(MInstr("div", {"d": ids[2], "a": lid, "b": plane}, loc))
        for ins in instrs:  # each logical program sees its own ids and the logical grid
            if ins.op in ("pid", "npid"):
                source = ids if ins.op == "pid" else grid
                ins.op, ins.args = "mov", {"d": ins.args["d"], "a": source[ins.args["axis"]]}
        loop = Loop(lid, phys, total, nphys, ids_code + list(nodes), loc, min_trips=1, num_stages=self.num_stages,
                    persistent=True)
        for ins in instrs:  # every tile belongs to one program: its copies are per program
            for r in ins.reads + ins.writes:
                if isinstance(r.key, Buffer) and r.key.scope is None:
                    r.key.scope = loop
        nodes[:] = head + [loop]
        return loop
