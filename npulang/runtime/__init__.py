"""The runtime: `@npu.jit` kernels launched, compiled through the cache, simulated or interpreted.

`jit` binds and checks a launch and builds its `LaunchOptions`; `launch` runs it on the process-wide
`Runtime` (machine, devices, `cache`, profiles) and returns a `RunRecord` (`record`); `profiling`
collects records in `npu.profile()` blocks; `inspection` shows every stage of one compile.

The decorator is `npulang.runtime.jit.jit` (re-exported by the face as `npu.jit`), not an attribute
here: a package attribute named like its submodule would hide the module.
"""

from npulang.runtime.inspection import Inspection
from npulang.runtime.jit import JITFunction
from npulang.runtime.launch import RUNTIME, LaunchOptions, Runtime
from npulang.runtime.profiling import Profile
from npulang.runtime.record import RunRecord

__all__ = ["Inspection", "JITFunction", "LaunchOptions", "Profile", "RUNTIME", "RunRecord", "Runtime"]
