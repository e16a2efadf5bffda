"""Regenerate the README's benchmark tables from the benchmarks themselves (`make bench`).

A table the README quotes from a benchmark sits between two markers naming the region and its command:

    <!-- bench:library python benchmarks/library.py -->
    | operator | problem | ... |
    |---|---|...|
    | ... |
    <!-- /bench:library -->

For each region this runs the command (with this interpreter, from the repository root), takes the Markdown
table it printed whose header row is the region's, and puts it in place of the region's rows; the prose around
the markers stays as written (update it if the figures it quotes moved).

    python benchmarks/readme_tables.py [--only NAME ...] [--readme README.md]
    python benchmarks/readme_tables.py --check     # seconds: the regions are well formed, their commands exist
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
OPEN = re.compile(r"^<!-- bench:(?P<name>[\w-]+) (?P<command>python benchmarks/\S+\.py(?: [^>]*?)?) -->$")
CLOSE = "<!-- /bench:{name} -->"


@dataclass(frozen=True)
class Region:
    """One marked table: its name, its command, and its lines' span in the README (markers excluded)."""

    name: str
    command: str
    start: int  # index of the first line after the opening marker
    end: int  # index of the closing marker


def regions(lines: list[str]) -> list[Region]:
    """The marked regions of the README's lines, in order; raises ValueError on a marker without its pair."""
    found, i = [], 0
    while i < len(lines):
        if lines[i].startswith("<!-- bench:"):
            m = OPEN.match(lines[i])
            if not m:
                raise ValueError(f"line {i + 1}: malformed marker {lines[i]!r} (want <!-- bench:NAME python "
                                 "benchmarks/SCRIPT.py [ARGS] -->)")
            close = CLOSE.format(name=m["name"])
            end = next((j for j in range(i + 1, len(lines)) if lines[j] == close), None)
            if end is None or any(line.startswith("<!-- bench:") for line in lines[i + 1:end]):
                raise ValueError(f"line {i + 1}: region {m['name']!r} has no {close} before the next region")
            found.append(Region(m["name"], m["command"], i + 1, end))
            i = end
        elif lines[i].startswith("<!-- /bench:"):
            raise ValueError(f"line {i + 1}: {lines[i]!r} closes no open region")
        i += 1
    return found


def table_problems(rows: list[str]) -> list[str]:
    """What is wrong with `rows` as one Markdown table (header, separator, at least one row, equal widths)."""
    if len(rows) < 3:
        return [f"a table needs a header, a separator and a row; got {len(rows)} lines"]
    widths = [row.count("|") for row in rows]
    problems = [f"not a table row: {row!r}" for row in rows if not (row.startswith("|") and row.endswith("|"))]
    if not re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", rows[1]):
        problems.append(f"second line is not a separator: {rows[1]!r}")
    problems += [f"{w - 1} cells where the header has {widths[0] - 1}: {row!r}"
                 for row, w in zip(rows, widths) if w != widths[0]]
    return problems


def check(text: str) -> list[str]:
    """Every problem with the README's regions: markers, tables, and commands naming a missing script."""
    try:
        found = regions(text.splitlines())
    except ValueError as exc:
        return [str(exc)]
    problems = []
    names = [r.name for r in found]
    problems += [f"region {n!r} appears more than once" for n in sorted({n for n in names if names.count(n) > 1})]
    for r in found:
        script = ROOT / shlex.split(r.command)[1]
        if not script.is_file():
            problems.append(f"region {r.name!r}: {r.command!r} names no file {script.relative_to(ROOT)}")
        problems += [f"region {r.name!r}: {p}" for p in table_problems(text.splitlines()[r.start:r.end])]
    return problems


def tables(output: str) -> list[list[str]]:
    """The Markdown tables in a command's output: runs of consecutive lines starting and ending with `|`."""
    found: list[list[str]] = []
    current: list[str] = []
    for line in [*output.splitlines(), ""]:
        if line.startswith("|") and line.rstrip().endswith("|"):
            current.append(line.rstrip())
        elif current:
            found.append(current)
            current = []
    return found


def run_command(command: str) -> str:
    """Run a region's command with this interpreter from the repository root; its stdout (stderr passes through)."""
    argv = [sys.executable, *shlex.split(command)[1:]]
    return subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True).stdout


def regenerate(text: str, only: set[str] | None = None, run: Callable[[str], str] = run_command) -> str:
    """`text` with each region's rows replaced by the table its command prints with the same header."""
    lines = text.splitlines()
    for r in reversed(regions(lines)):  # from the end, so earlier regions' line numbers stay valid
        if only is not None and r.name not in only:
            continue
        print(f"{r.name}: {r.command}", file=sys.stderr, flush=True)
        header = lines[r.start]
        printed = tables(run(r.command))
        match = [t for t in printed if t[0] == header]
        if len(match) != 1:
            raise ValueError(f"region {r.name!r}: {r.command!r} printed {len(match)} tables with the header "
                             f"{header!r} (its headers: {[t[0] for t in printed]}); update the region's header "
                             "or the benchmark")
        problems = table_problems(match[0])
        if problems:
            raise ValueError(f"region {r.name!r}: {r.command!r} printed a malformed table: {problems}")
        lines[r.start:r.end] = match[0]
    return "\n".join(lines) + ("\n" if text.endswith("\n") else "")


def main(argv: list[str] | None = None) -> int:
    """Rewrite the README's marked tables (or, with --check, only validate them); 0 on success."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="validate markers, tables and commands; run nothing")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="regenerate only these regions")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    problems = check(text)
    if problems:
        print("\n".join(f"{args.readme}: {p}" for p in problems), file=sys.stderr)
        return 1
    if args.check:
        print(f"{args.readme}: {len(regions(text.splitlines()))} benchmark tables, well formed")
        return 0
    args.readme.write_text(regenerate(text, set(args.only) if args.only else None))
    print(f"{args.readme}: rewritten; review the prose around the tables (git diff)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
