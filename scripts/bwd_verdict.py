"""Pick the Triton backward kernel from a scan_gpu.py results.json: print "chunked" or "seq".

"chunked" only when, in every accuracy case, each gradient's error against the float64 reference is
at most twice the sequential backward's (plus 1e-6), and its forward+backward is faster at batch 1.
The reasons go to stderr. A missing or partial file gives "seq".
    python3 scripts/bwd_verdict.py results.json
"""
import json
import sys

SEQ, CHUNKED = "triton-chunked", "triton-chunked/bwd-chunked"


def verdict(res):
    acc = {(r["case"], r["impl"]): r for r in res.get("accuracy", [])}
    cases = sorted({case for case, impl in acc if impl == CHUNKED})
    if not cases:
        return "seq", "no accuracy rows for the chunked backward"
    for case in cases:
        seq, chk = acc.get((case, SEQ)), acc[(case, CHUNKED)]
        if seq is None:
            return "seq", f"{case}: no sequential row to compare with"
        for key in (k for k in chk if k.startswith("d")):
            if not chk[key] <= 2 * seq[key] + 1e-6:  # also catches NaN
                return "seq", f"{case} {key}: {chk[key]:.2e} against the sequential {seq[key]:.2e}"
    times = {(r["case"], r["impl"]): r["fwd_bwd_ms"] for r in res.get("timings", [])}
    seq_ms, chk_ms = times.get(("Bt=1 float32", SEQ)), times.get(("Bt=1 float32", CHUNKED))
    if seq_ms is None or chk_ms is None:
        return "seq", "no batch-1 fp32 timings"
    if chk_ms >= seq_ms:
        return "seq", f"accurate but not faster: {chk_ms:.2f} ms against {seq_ms:.2f} ms"
    return "chunked", f"accurate in {len(cases)} cases and faster: {chk_ms:.2f} ms against {seq_ms:.2f} ms"


def main():
    try:
        res = json.loads(open(sys.argv[1]).read())
    except (OSError, ValueError) as exc:
        res, why = {}, f"cannot read {sys.argv[1]}: {exc}"
    choice, why = verdict(res) if res else ("seq", why)
    print(f"bwd_verdict: {choice}: {why}", file=sys.stderr)
    print(choice)


if __name__ == "__main__":
    main()
