"""Tuning database: best configurations per (kernel, shape, dtypes, machine) (later issue)."""
