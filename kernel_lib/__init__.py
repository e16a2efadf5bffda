"""Operator library written in npulang: gemm, conv2d, softmax, ... (later issue)."""
