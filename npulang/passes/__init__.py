"""Generic block-IR passes and the pass manager (backend passes live in `npulang.backend`).

`generic_pipeline()` is the order the compiler runs them in: canonicalize exposes constants,
fold evaluates them, canonicalize again cleans up what folding exposed, CSE merges duplicates
and DCE removes what is left unused.
"""

from npulang.passes.base import OpRewriter, Pass, PassManager, Stage
from npulang.passes.canonicalize import Canonicalize
from npulang.passes.cse import CSE
from npulang.passes.dce import DCE
from npulang.passes.fold import Fold


def generic_pipeline() -> list[Pass]:
    """Fresh instances of the generic passes in their standard order."""
    return [Canonicalize(), Fold(), Canonicalize(), CSE(), DCE()]


__all__ = ["CSE", "DCE", "Canonicalize", "Fold", "OpRewriter", "Pass", "PassManager", "Stage",
           "generic_pipeline"]
