"""`npu-db`: look at, move and prune the tuning database.

    npu-db list   [--kernel NAME]              best records, one line (or one JSON object) each
    npu-db show   KERNEL                       every key of a kernel: its best and all its trials
    npu-db export [FILE] [--kernel NAME]       one JSON document (stdout without FILE)
    npu-db import FILE                         merge an export (a trial stored keeps its first result)
    npu-db prune  [--kernel N] [--machine NAME|FP] [--compiler-version V] [--stale-claims]

Every command takes `--db URL` (else $NPU_TUNING_DB, else the SQLite file in the user cache dir) and
`--json`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from tuning_db.records import BestRecord, Trial, TuningDBError, TuningKey, canonical_json
from tuning_db.store import TuningStore, open_store
from tuning_db.transfer import export_document, import_document


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """The console script; returns the exit status (0 ok, 1 the database or the input is refused)."""
    args = _parser().parse_args(argv)
    out = out or sys.stdout
    try:
        with open_store(args.db) as store:
            args.run(store, args, out)
    except (TuningDBError, ValueError, OSError) as e:
        print(f"npu-db: error: {e}", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", metavar="URL", help="SQLAlchemy URL or file path (default: $NPU_TUNING_DB, "
                                                    "else tuning.db in the user cache dir)")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    parser = argparse.ArgumentParser(prog="npu-db", description="Inspect and maintain the npulang tuning database.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    p = commands.add_parser("list", parents=[common], help="best records, one per line")
    p.add_argument("--kernel", help="only this kernel (qualified name)")
    p.set_defaults(run=_list)
    p = commands.add_parser("show", parents=[common], help="every key of one kernel, with its trials")
    p.add_argument("kernel", help="the kernel's qualified name")
    p.set_defaults(run=_show)
    p = commands.add_parser("export", parents=[common], help="write records as one JSON document")
    p.add_argument("file", nargs="?", type=Path, help="where to write (default: stdout)")
    p.add_argument("--kernel", help="only this kernel")
    p.set_defaults(run=_export)
    p = commands.add_parser("import", parents=[common], help="merge a JSON document written by export")
    p.add_argument("file", type=Path)
    p.set_defaults(run=_import)
    p = commands.add_parser("prune", parents=[common], help="delete keys (with trials and best records)")
    p.add_argument("--kernel", help="keys of this kernel")
    p.add_argument("--machine", metavar="NAME|FINGERPRINT", help="keys of this machine")
    p.add_argument("--compiler-version", help="keys of this compiler version")
    p.add_argument("--stale-claims", action="store_true",
                   help="delete only the claims of dead processes (of the keys the other filters name)")
    p.set_defaults(run=_prune)
    return parser


def _emit(out: TextIO, value: Any) -> None:
    out.write(json.dumps(value, sort_keys=True) + "\n")


def _key_text(key: TuningKey, machines: dict[str, str]) -> str:
    shape = ",".join(f"{k}={v}" for k, v in sorted(key.key.items()))
    machine = machines.get(key.machine, key.machine[:12])
    return f"{key.kernel} [{shape}] {','.join(key.dtypes)} on {machine} (compiler {key.compiler_version})"


def _config_text(config: Any) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(config.items()))


def _list(store: TuningStore, args: argparse.Namespace, out: TextIO) -> None:
    records = store.all_best(args.kernel)
    if args.json:
        for r in records:
            _emit(out, r.to_json())
        return
    machines = {m.fingerprint: m.name for m in store.machines()}
    for r in records:
        out.write(f"{_key_text(r.key, machines)}: {r.cycles} cycles with {_config_text(r.config)} "
                  f"({r.trials} trials)\n")
    if not records:
        out.write(f"no best records in {store.where}\n")


def _show(store: TuningStore, args: argparse.Namespace, out: TextIO) -> None:
    best = {r.key: r for r in store.all_best(args.kernel)}
    keys = store.keys(args.kernel)
    if not keys:
        raise ValueError(f"no records of kernel {args.kernel!r} in {store.where}")
    machines = {m.fingerprint: m.name for m in store.machines()}
    for key in keys:
        trials = sorted(store.trials(key), key=_trial_order)
        record: BestRecord | None = best.get(key)
        if args.json:
            _emit(out, {"key": key.to_json(), "best": None if record is None else record.to_json(),
                        "trials": [t.to_json() for t in trials]})
            continue
        out.write(_key_text(key, machines) + "\n")
        out.write(f"  best: {record.cycles} cycles with {_config_text(record.config)}\n" if record else
                  "  best: none yet\n")
        for t in trials:
            result = f"{t.cycles} cycles" if t.state == "done" else t.failure if t.state == "failed" else "running"
            out.write(f"  {_config_text(t.config)}: {result}\n")


def _trial_order(t: Trial) -> tuple[int, int, str]:
    return {"done": 0, "running": 1, "failed": 2}[t.state], t.cycles or 0, canonical_json(t.config)


def _export(store: TuningStore, args: argparse.Namespace, out: TextIO) -> None:
    text = json.dumps(export_document(store, args.kernel), indent=1, sort_keys=True) + "\n"
    if args.file is None:
        out.write(text)
    else:
        args.file.write_text(text)


def _import(store: TuningStore, args: argparse.Namespace, out: TextIO) -> None:
    try:
        document = json.loads(args.file.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{args.file}: not JSON ({e.msg}, line {e.lineno})") from None
    try:
        done = import_document(store, document)
    except ValueError as e:
        raise ValueError(f"{args.file}: {e}") from None
    if args.json:
        _emit(out, vars(done))
    else:
        out.write(f"imported {done.keys} keys ({done.trials} trials, {done.best} best records) and "
                  f"{done.machines} machines into {store.where}\n")


def _prune(store: TuningStore, args: argparse.Namespace, out: TextIO) -> None:
    machines: list[str | None] = [args.machine]
    if args.machine is not None:  # a registered name stands for its fingerprints
        machines = [m.fingerprint for m in store.machines() if m.name == args.machine] or machines
    gone = sum(store.prune(kernel=args.kernel, machine=m, compiler_version=args.compiler_version,
                           stale_claims=args.stale_claims) for m in machines)
    if args.json:
        _emit(out, {"deleted_rows": gone})
    else:
        out.write(f"deleted {gone} rows from {store.where}\n")


if __name__ == "__main__":
    sys.exit(main())
