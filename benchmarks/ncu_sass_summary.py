"""Where a kernel's warps wait, from Nsight Compute's per-SASS-line export.

    ncu --import bwd.ncu-rep --page source --csv --print-source sass > sass.csv
    python3 benchmarks/ncu_sass_summary.py sass.csv [--top 25] > summary.md

Prints markdown: the stall reasons summed over all lines, the stall samples and executed
instructions per opcode, and the lines with the most stall samples. Session 11 (issue #2) read the
scan backward's profile with it.
"""

import argparse
import collections
import csv
import re
import sys

SAMPLES = "Warp Stall Sampling (All Samples)"
EXECUTED = "Instructions Executed"


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:  # '-' and empty cells
        return 0.0


def read_lines(path: str) -> tuple[list[str], list[dict]]:
    """The stall columns and one dict per SASS line. The export's first row names the kernel and
    the second holds the column names."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header = next((r for r in rows[:5] if SAMPLES in r), None)
    if header is None:
        sys.exit(f"error: {path}: no '{SAMPLES}' column; export with --page source --csv --print-source sass")
    start = rows.index(header) + 1
    lines = [dict(zip(header, r)) for r in rows[start:] if len(r) == len(header)]
    stalls = [c for c in header if c.startswith("stall_") and "Not Issued" not in c]
    return stalls, lines


def opcode(source: str) -> str:
    """'@!P0 FADD.FTZ R1, ...' -> 'FADD'."""
    m = re.match(r"\s*(@!?U?P\w+\s+)?([A-Z0-9_]+)", source)
    return m.group(2) if m else "?"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("csv", help="ncu --page source --csv --print-source sass output")
    p.add_argument("--top", type=int, default=25, help="how many of the hottest lines to list")
    args = p.parse_args(argv)
    stalls, lines = read_lines(args.csv)
    by_reason = collections.Counter({c: sum(number(d[c]) for d in lines) for c in stalls})
    total = sum(by_reason.values()) or 1.0
    print(f"{len(lines)} SASS lines, {total:,.0f} stall samples\n")
    print("| stall reason | share of samples |\n|---|---|")
    for c, v in by_reason.most_common():
        if v / total >= 0.001:
            print(f"| {c.removeprefix('stall_')} | {v / total:.1%} |")
    samples, executed = collections.Counter(), collections.Counter()
    for d in lines:
        samples[opcode(d["Source"])] += number(d[SAMPLES])
        executed[opcode(d["Source"])] += number(d[EXECUTED])
    all_executed = sum(executed.values()) or 1.0
    print("\n| opcode | share of stall samples | share of executed instructions |\n|---|---|---|")
    for o, v in samples.most_common(16):
        print(f"| {o} | {v / total:.1%} | {executed[o] / all_executed:.1%} |")
    print("\n| share | address | SASS | its main stall |\n|---|---|---|---|")
    for d in sorted(lines, key=lambda d: -number(d[SAMPLES]))[: args.top]:
        main_stall = max(stalls, key=lambda c: number(d[c])).removeprefix("stall_")
        print(f"| {number(d[SAMPLES]) / total:.1%} | {d['Address'][-5:]} | `{d['Source'].strip()}` | {main_stall} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
