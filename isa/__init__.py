"""The NPU's machine description and VLIW instruction set, with its assembly text form.

This package imports nothing else of ours: the simulator and the compiler both build on it.
"""

from isa.dtypes import DTYPES, DType, dtype, from_numpy
from isa.instructions import OPCODES, Instr, Label, Mem, OpDef, Pipe, Reg, SourceLoc, make
from isa.program import ArgSpec, Bundle, Program, ProgramError, Symbol
from isa.spec import MachineSpec, MachineSpecError

__all__ = [
    "DTYPES", "DType", "dtype", "from_numpy", "OPCODES", "Instr", "Label", "Mem", "OpDef", "Pipe", "Reg",
    "SourceLoc", "make", "ArgSpec", "Bundle", "Program", "ProgramError", "Symbol", "MachineSpec",
    "MachineSpecError",
]
