"""npulang: a Triton-like kernel language compiled to the NPU ISA."""
