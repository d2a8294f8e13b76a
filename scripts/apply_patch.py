"""Apply a unified diff to the files it names, exactly (context must match; no fuzz), forwards or
reversed. The device machines' image need not have `patch` or `git`, and gpu_patched_kernels.sh
must not fail there for want of them.

    python3 scripts/apply_patch.py scripts/patches/bwd_lane_sums.patch          # paths from the repo root
    python3 scripts/apply_patch.py -R scripts/patches/bwd_skip_unread_steps.patch
"""

import argparse
import re
import sys
from pathlib import Path

HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


class PatchError(ValueError):
    """A diff that cannot be read, or a hunk whose lines the file does not hold."""


def parse(text: str) -> list[tuple[str, list[dict]]]:
    """[(path, hunks)], each hunk {"old": start, "new": start, "lines": [(" " | "-" | "+", line)]}.
    Hunk bodies are read by their headers' line counts, so a line that looks like a header is not one."""
    lines = text.splitlines(keepends=True)
    files, i = [], 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            path = lines[i + 1][4:].split("\t")[0].strip()
            files.append((path[2:] if path.startswith("b/") else path, []))
            i += 2
            continue
        match = HUNK.match(line)
        if match:
            if not files:
                raise PatchError(f"line {i + 1}: a hunk before any file header")
            old_len = int(match.group(2) or 1)
            new_len = int(match.group(4) or 1)
            body, i = [], i + 1
            while old_len or new_len:
                if i >= len(lines):
                    raise PatchError("the diff ends inside a hunk")
                kind, rest = lines[i][:1], lines[i][1:]
                if kind == "\\":  # "\ No newline at end of file"
                    i += 1
                    continue
                if kind not in (" ", "-", "+"):
                    raise PatchError(f"line {i + 1}: {lines[i][:40]!r} inside a hunk")
                body.append((kind, rest))
                old_len -= kind in (" ", "-")
                new_len -= kind in (" ", "+")
                i += 1
            files[-1][1].append({"old": int(match.group(1)), "new": int(match.group(3)), "lines": body})
            continue
        i += 1  # "diff --git", "index": headers of no use here
    return files


def apply(text: str, hunks: list[dict], reverse: bool = False) -> str:
    """`text` with the hunks applied (or undone): each hunk's lines must appear exactly; where they
    appear more than once, the place nearest the hunk's own line number (shifted by earlier hunks) wins."""
    out = text.splitlines(keepends=True)
    remove, add, start = ("+", "-", "new") if reverse else ("-", "+", "old")
    shift = 0
    for n, hunk in enumerate(hunks, 1):
        old = [line for kind, line in hunk["lines"] if kind in (" ", remove)]
        new = [line for kind, line in hunk["lines"] if kind in (" ", add)]
        places = [i for i in range(len(out) - len(old) + 1) if out[i:i + len(old)] == old]
        if not places:
            raise PatchError(f"hunk {n} (line {hunk[start]}) does not apply")
        at = min(places, key=lambda i: abs(i - (hunk[start] - 1 + shift)))
        out[at:at + len(old)] = new
        shift += len(new) - len(old)
    return "".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("patch", type=Path)
    ap.add_argument("-R", "--reverse", action="store_true", help="undo the patch")
    ap.add_argument("--root", type=Path, default=Path("."), help="where the diff's paths start (default: here)")
    args = ap.parse_args(argv)
    try:
        changed = {}
        for path, hunks in parse(args.patch.read_text()):
            changed[path] = apply((args.root / path).read_text(), hunks, args.reverse)
    except (OSError, PatchError) as error:
        print(f"apply_patch: {args.patch}: {error}", file=sys.stderr)
        return 1
    for path, text in changed.items():  # written only once every file's hunks applied
        (args.root / path).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
