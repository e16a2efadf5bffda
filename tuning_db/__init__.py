"""Tuning database: every evaluation and the best config per (kernel, key values, dtypes, machine,
compiler version), in SQLite on one machine or PostgreSQL across machines. Imports nothing of ours."""

from tuning_db.records import BestRecord, Machine, Trial, TuningDBError, TuningKey
from tuning_db.store import TuningStore, open_store

__all__ = ["BestRecord", "Machine", "Trial", "TuningDBError", "TuningKey", "TuningStore", "open_store"]
