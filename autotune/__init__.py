"""Autotuner: searches kernel configurations with simulated cycles as the objective (later issue)."""
