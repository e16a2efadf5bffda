"""Cycle-counting multi-core NPU simulator."""
