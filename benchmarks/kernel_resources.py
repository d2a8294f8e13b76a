"""Registers, spills and shared memory of the scan's Triton kernels for sm_90, built here without a GPU.

    python3 benchmarks/kernel_resources.py                       # every kernel at the paper's and the default model's launch
    python3 benchmarks/kernel_resources.py --kernels bwd-chunked --n 64 --block-d 16 --t 2,4 --warps 4
    python3 benchmarks/kernel_resources.py --as-launched          # built as the launcher's call builds it
    python3 benchmarks/kernel_resources.py --kernels fwd-chunked,fwd-paths --as-launched --loops
                                                                  # and the instructions of each kernel's main loop

Device time is scarce; what limits a kernel's occupancy is not. Triton compiles each kernel for
an H100 (`GPUTarget("cuda", 90, 32)`) on this machine with the ptxas it ships, and `cuobjdump
-res-usage` reads the cubin: registers per thread (at most 255; a multiprocessor has 65,536, so a
4-warp program at 255 leaves room for two), the stack frame (spilled registers) and shared memory.
Session 8 read from it why the chunked backward runs two programs per multiprocessor
(benchmarks/results/2026-12-06-h100-s8/). Prints a markdown table.

By default every integer argument is a plain i32. At a launch Triton specializes them: an
integer equal to 1 becomes a constant and pointers and multiples of 16 are marked 16-divisible.
--as-launched builds the kernels so, for contiguous inputs with L and N multiples of 16 (the
paper's and the default model's shapes): the strides along L and A's along N are 1. Register
counts differ between the two builds (the scanned backward spills only in the plain one).

--loops adds what `cuobjdump -sass` shows of the kernel's longest loop (its body, from a backward
branch's target to the branch): its instructions, its local loads and stores (spills, where a
register cap leaves some outside the loop only), its MUFU.EX2 (the exponentials, 16 a clock per
multiprocessor on an H100), and both per element-step, i.e. per (step, state, channel) that one
thread handles in one pass of the loop (T * N * block_d / threads). Static counts of what runs, not
timings; they set floors (issue #2's results say which).

--all-loops lists every innermost loop of each kernel instead (address range, instructions,
exponentials, shuffles, shared-memory accesses, barriers, spills), for kernels whose longest loop is
not the one of interest: with Triton 3.8 the Gluon backward's pass over a sub-chunk's forward is
unrolled and outgrows its loop over pairs of steps, which Triton 3.6 (the device's) leaves longest.
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import os
import collections
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "MedSegMamba"))

# kernel name -> (function name in scan_kernels, constexpr names it takes beyond the common ones)
# Since session 16 the backward kernels get delta with its bias and softplus already applied
# (selective_scan.py's _scan_bwd); --softplus-in-kernel builds them as they were launched before.
PLAIN = {"HAS_BIAS": False, "SOFTPLUS": False}
KERNELS = {
    "fwd-chunked": ("_scan_fwd_chunked_kernel", {"STORE_CKPT": True, "HAS_D": True, "PATHS": False}),
    # the same kernel walking SS3D's paths (selective_scan_paths_triton: inference, channels contiguous)
    "fwd-paths": ("_scan_fwd_chunked_kernel", {"STORE_CKPT": False, "HAS_D": True, "PATHS": True}),
    "bwd-chunked": ("_scan_bwd_chunked_kernel", {"PARTIAL": True, "SEG_PAR": False, "HAS_D": True, **PLAIN}),
    # each channel block's states split over 2 programs ($MEDSEGMAMBA_TRITON_BWD_SPLIT=2): N is then
    # the program's share, 32 of the paper's 64
    "bwd-split2": ("_scan_bwd_chunked_kernel", {"PARTIAL": True, "SEG_PAR": False, "HAS_D": True, "N_SPLIT": 2,
                                                **PLAIN}),
    "bwd-segment": ("_scan_bwd_chunked_kernel", {"PARTIAL": True, "SEG_PAR": True, "HAS_D": True, **PLAIN}),
    # the same two with each tile's steps unrolled ($MEDSEGMAMBA_TRITON_BWD_VARIANT=steps; not the
    # default: slower on an H100)
    "bwd-steps": ("_scan_bwd_steps_kernel", {"PARTIAL": True, "SEG_PAR": False, "HAS_D": True, **PLAIN}),
    "bwd-steps-segment": ("_scan_bwd_steps_kernel", {"PARTIAL": True, "SEG_PAR": True, "HAS_D": True, **PLAIN}),
    "bwd-local": ("_scan_bwd_local_kernel", PLAIN),
    "bwd-carry": ("_scan_bwd_carry_kernel", {}),
    # SS3D's inference walk in Gluon (scan_gluon.py, $MEDSEGMAMBA_TRITON_WALK=gluon): N is BLOCK_N,
    # block_d BLOCK_D; TPW_N lanes share a channel's states as the package sets them (4 at N 64,
    # 1 at N 16), so SPT_N = N / TPW_N and SPT_D = block_d / (32 / TPW_N lanes x warps)
    "walk-gluon": ("scan_paths_fwd_kernel", {"HAS_D": True, "STORE_CKPT": False}),
    # the same under autograd: it also leaves the backward's checkpoints (16-channel blocks) every 64 steps
    "walk-gluon-ckpt": ("scan_paths_fwd_kernel", {"HAS_D": True, "STORE_CKPT": True, "CKPT_BLOCK_D": 16}),
    # the backward in Gluon (scan_gluon.scan_bwd_kernel, $MEDSEGMAMBA_TRITON_BWD=gluon): N is BLOCK_N,
    # block_d BLOCK_D, T the steps a sub-chunk stages (SUB); warps split the states (build, below)
    "bwd-gluon": ("scan_bwd_kernel", {"HAS_D": True, "PATHS": False, "ATOMIC": False, "HAS_BIAS": False,
                                      "SOFTPLUS": False}),
    # the same walking SS3D's paths under autograd (selective_scan_paths_triton_grad: bf16 u, B, C;
    # channels and states contiguous)
    "bwd-gluon-paths": ("scan_bwd_kernel", {"HAS_D": True, "PATHS": True, "ATOMIC": False, "HAS_BIAS": False,
                                            "SOFTPLUS": False}),
    # the same adding dB and dC atomically into one tensor (the default since session 22; the two
    # above store a slice per channel block, as $MEDSEGMAMBA_TRITON_BC=partial)
    "bwd-gluon-atomic-paths": ("scan_bwd_kernel", {"HAS_D": True, "PATHS": True, "ATOMIC": True, "HAS_BIAS": False,
                                                   "SOFTPLUS": False}),
    # and applying delta's bias and softplus as it stages each sub-chunk ($MEDSEGMAMBA_TRITON_BWD_DELTA=kernel)
    "bwd-gluon-delta-paths": ("scan_bwd_kernel", {"HAS_D": True, "PATHS": True, "ATOMIC": True, "HAS_BIAS": True,
                                                  "SOFTPLUS": True}),
}
# the launches the package makes (selective_scan.py's configs): (N, block_d, T, warps)
LAUNCHES = {
    "fwd-chunked": [(64, 16, 8, 2), (16, 16, 16, 2)],
    "fwd-paths": [(64, 16, 8, 2), (16, 16, 16, 2)],
    "bwd-chunked": [(64, 16, 2, 4), (16, 64, 2, 4)],
    "bwd-split2": [(32, 16, 2, 4), (32, 16, 4, 4), (32, 16, 2, 2), (8, 64, 2, 4)],
    "bwd-segment": [(64, 16, 2, 4), (16, 64, 2, 4)],
    "bwd-steps": [(64, 16, 2, 8), (16, 64, 2, 8)],
    "bwd-steps-segment": [(64, 16, 2, 8), (16, 64, 2, 8)],
    "bwd-local": [(64, 16, 2, 4), (16, 64, 2, 4)],
    "bwd-carry": [(64, 16, 1, 4), (16, 64, 1, 4)],
    "walk-gluon": [(64, 64, 4, 4), (16, 128, 4, 4)],
    "walk-gluon-ckpt": [(64, 64, 4, 4), (16, 128, 4, 4)],
    "bwd-gluon": [(64, 16, 8, 4), (16, 16, 8, 1)],
    "bwd-gluon-paths": [(64, 16, 8, 4), (16, 16, 8, 1)],
    "bwd-gluon-atomic-paths": [(64, 16, 8, 4), (16, 16, 8, 1)],
    "bwd-gluon-delta-paths": [(64, 16, 8, 4), (16, 16, 8, 1)],
}
# register caps the package sets at those launches (selective_scan.py's _STEPS_MAXNREG, _GLUON_MAXNREG)
MAXNREG = {"bwd-steps": 128, "bwd-gluon": 128, "bwd-gluon-paths": 128, "bwd-gluon-atomic-paths": 128,
           "bwd-gluon-delta-paths": 128}
# arguments that are 1 for contiguous inputs (--as-launched): the strides along L, and A's along N
UNIT_STRIDES = ("s_ul", "s_tl", "s_yl", "s_bl", "s_cl", "s_an")
# fwd-paths reads SS3D's layouts, whose channels (and states) are contiguous instead
UNIT_STRIDES_OF = {"fwd-paths": ("s_ud", "s_td", "s_yd", "s_bn", "s_cn", "s_an"),
                   "bwd-gluon-paths": ("s_ud", "s_td", "s_yd", "s_bn", "s_cn", "s_an"),
                   "bwd-gluon-atomic-paths": ("s_ud", "s_td", "s_yd", "s_bn", "s_cn", "s_an"),
                   "bwd-gluon-delta-paths": ("s_ud", "s_td", "s_yd", "s_bn", "s_cn", "s_an"),
                   "walk-gluon": ("s_bn", "s_cn", "s_an"), "walk-gluon-ckpt": ("s_bn", "s_cn", "s_an")}


def build(kernel: str, n: int, block_d: int, t: int, warps: int, maxnreg: int | None = None,
          as_launched: bool = False, softplus_in_kernel: bool = False):
    """One kernel compiled by Triton for sm_90 at one launch configuration."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from medsegmamba.ops.triton import scan_kernels

    name, extra = KERNELS[kernel]
    gluon = kernel.startswith(("walk-gluon", "bwd-gluon"))
    if gluon:
        from triton.experimental.gluon._runtime import GluonASTSource as ASTSource  # noqa: F811

        from medsegmamba.ops.triton import scan_gluon
        fn = getattr(scan_gluon, name)
        if kernel.startswith("walk-gluon"):  # selective_scan._gluon_walk_config's rule
            tpw_n = max(1, min(4, n // 16))
            lanes_d = 32 // tpw_n * warps
            if n % tpw_n or block_d % lanes_d:
                raise ValueError(f"walk-gluon: N={n} must be a multiple of {tpw_n} and block_d={block_d} of {lanes_d}")
            extra = extra | {"SPT_N": n // tpw_n, "TPW_N": tpw_n, "SPT_D": block_d // lanes_d,
                             "LANES_D": min(32, block_d), "LANES_N": min(32, n)}
        else:  # the backward: warps split the states, 4 lanes over a warp's (_gluon_bwd_config), T its SUB
            tpw_n = min(4, n // warps)
            lanes_d = 32 // tpw_n
            if n % (tpw_n * warps) or block_d % lanes_d:
                raise ValueError(f"bwd-gluon: N={n} must be a multiple of {tpw_n * warps} and block_d={block_d} "
                                 f"of {lanes_d}")
            extra = extra | {"SPT_N": n // warps // tpw_n, "TPW_N": tpw_n, "SPT_D": block_d // lanes_d, "SUB": t}
    else:
        fn = getattr(scan_kernels, name)
    wanted = {"HAS_BIAS": True, "SOFTPLUS": True, "CHUNK": 64, "BLOCK_D": block_d, "BLOCK_N": n, "T": t,
              "CKPT_BLOCK_D": block_d, "N_SPLIT": 1, **extra}
    if softplus_in_kernel:
        wanted |= {"HAS_BIAS": True, "SOFTPLUS": True}
    if as_launched:
        wanted |= dict.fromkeys(UNIT_STRIDES_OF.get(kernel, UNIT_STRIDES), 1)
    constexprs = {k: v for k, v in wanted.items() if k in fn.arg_names}
    # a constexpr left out would be built as a runtime i32 (both sides of its `if`s): its default instead
    constexprs |= {q.name: q.default for q in fn.params
                   if q.is_constexpr and q.name not in constexprs and q.default is not inspect.Parameter.empty}
    # the walks read SS3D's bf16 activations (the backward's dl is float32); the rest is built on float32 pointers
    pointer = lambda a: "*i32" if a == "path_ptr" else (  # noqa: E731
        "*bf16" if (kernel.startswith("walk-gluon") and a in ("u_ptr", "dt_ptr", "B_ptr", "C_ptr"))
        or (kernel.startswith("bwd-gluon") and kernel.endswith("paths")
            and a in ("u_ptr", "B_ptr", "C_ptr"))
        or (kernel == "bwd-gluon-delta-paths" and a == "dl_ptr") else "*fp32")  # there dl_ptr is delta
    signature = {a: "constexpr" if a in constexprs else (pointer(a) if a.endswith("_ptr") else "i32")
                 for a in fn.arg_names}
    # pointers and the other strides (multiples of L or N) are 16-divisible at such a launch
    attrs = {(i,): [["tt.divisibility", 16]] for i, a in enumerate(fn.arg_names)
             if as_launched and a not in constexprs and (a.endswith("_ptr") or a.startswith("s_"))}
    source = ASTSource(fn=fn, signature=signature,
                       constexprs={(fn.arg_names.index(k),): v for k, v in constexprs.items()}, attrs=attrs)
    options = {"num_warps": warps} | ({"maxnreg": maxnreg} if maxnreg else {})
    return triton.compile(source, target=GPUTarget("cuda", 90, 32), options=options)


def cuobjdump(compiled, flag: str) -> str:
    """What Triton's cuobjdump prints for the compiled kernel's cubin with `flag`."""
    import triton

    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    with tempfile.TemporaryDirectory() as tmp:
        cubin = Path(tmp) / "kernel.cubin"
        cubin.write_bytes(compiled.asm["cubin"])
        return subprocess.run([str(tool), flag, str(cubin)], capture_output=True, text=True, check=True).stdout


def resources(kernel: str, n: int, block_d: int, t: int, warps: int, maxnreg: int | None = None,
              as_launched: bool = False, softplus_in_kernel: bool = False) -> dict:
    """{"regs", "stack", "shared", "programs_per_sm"} of one kernel built for sm_90 at one launch configuration."""
    compiled = build(kernel, n, block_d, t, warps, maxnreg, as_launched, softplus_in_kernel)
    report = cuobjdump(compiled, "-res-usage")
    found = re.search(r"REG:(\d+) STACK:(\d+) SHARED:(\d+)", report)
    if found is None:
        raise RuntimeError(f"cuobjdump -res-usage gave no resource line for {kernel}:\n{report[-500:]}")
    regs, stack, shared = (int(v) for v in found.groups())
    # Triton gives most shared memory at the launch (dynamic); the cubin holds only the static part
    shared = max(shared, int(compiled.metadata.shared))
    per_warp = -(-max(regs, 1) * 32 // 256) * 256  # registers are given to a warp 256 at a time
    # an H100's multiprocessor: 65,536 registers, 64 warps, 228 KB of shared memory (1 KB of it
    # reserved per program)
    by_shared = 233472 // (shared + 1024) if shared else 64
    return {"regs": regs, "stack": stack, "shared": shared,
            "programs_per_sm": min(65536 // (per_warp * warps), 64 // warps, by_shared)}


_SASS_LINE = re.compile(r"\s*/\*([0-9a-f]{4,})\*/\s+([^;]*);")


def inner_loops(sass: str) -> list[collections.Counter]:
    """The innermost loops of a `cuobjdump -sass` listing, in address order: the opcodes (with
    their modifiers, predicates dropped) of each body, from a backward branch's target to the
    branch. Innermost: the body holds no other loop, so an outer loop over chunks is not counted
    with the tile loops inside it."""
    return [ops for _, _, ops in _inner_ranges(sass)]


def _inner_ranges(sass: str) -> list[tuple[int, int, collections.Counter]]:
    """(start, end, opcodes) of each innermost loop of a listing (`inner_loops`), in address order."""
    lines = [(int(m.group(1), 16), re.sub(r"^@!?U?P[T0-9]+\s+", "", m.group(2).strip()))
             for m in map(_SASS_LINE.match, sass.splitlines()) if m]
    loops = []
    for addr, text in lines:
        target = re.search(r"0x([0-9a-f]+)", text) if text.startswith("BRA") else None
        if target and int(target.group(1), 16) < addr:
            loops.append((int(target.group(1), 16), addr))
    inner = [(lo, hi) for lo, hi in loops if not any(lo <= a < b <= hi and (a, b) != (lo, hi) for a, b in loops)]
    return [(lo, hi, collections.Counter(t.split()[0] for a, t in lines if lo <= a <= hi)) for lo, hi in sorted(inner)]


def _loop_counts(ops: collections.Counter) -> dict:
    """A loop body's instructions, exponentials, shuffles, shared-memory accesses, barriers and local
    loads and stores (spills). Shuffles and shared-memory accesses share the MIO pipe (session 23: a
    bound candidate)."""
    count = lambda prefixes: sum(v for op, v in ops.items() if op.startswith(prefixes))  # noqa: E731
    return {"instructions": sum(ops.values()), "ex2": ops["MUFU.EX2"], "shfl": count("SHFL"),
            "shared": count(("LDS", "STS")), "bar": count("BAR"), "local": count(("LDL", "STL"))}


def loop_table(sass: str) -> list[dict]:
    """Every innermost loop of a listing (`inner_loops`' bodies, with their address ranges), counted."""
    return [{"start": lo, "end": hi, **_loop_counts(ops)} for lo, hi, ops in _inner_ranges(sass)]


def longest_loop(sass: str) -> dict:
    """The longest innermost loop (`inner_loops`): {"instructions", "opcodes"} over its body."""
    loops = inner_loops(sass)
    if not loops:
        raise RuntimeError("no loop (backward branch) in the SASS listing")
    best = max(loops, key=lambda c: sum(c.values()))
    return {"instructions": sum(best.values()), "opcodes": best}


def loop_row(kernel: str, n: int, block_d: int, t: int, warps: int, maxnreg: int | None, as_launched: bool,
             softplus_in_kernel: bool = False) -> dict:
    compiled = build(kernel, n, block_d, t, warps, maxnreg, as_launched, softplus_in_kernel)
    loop = longest_loop(cuobjdump(compiled, "-sass"))
    # element-steps of one thread in one pass of the loop: T steps, but the Gluon backward's longest
    # loop walks a pair of steps (its sub-chunk, T, holds T / 2 pairs)
    per_step = (2 if kernel.startswith("bwd-gluon") else t) * n * block_d / (32 * warps)
    counts = _loop_counts(loop["opcodes"])
    return {**counts, "per_step": counts["instructions"] / per_step, "ex2_per_step": counts["ex2"] / per_step}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernels", default=",".join(KERNELS), help=f"comma-separated, of {', '.join(KERNELS)}")
    ap.add_argument("--n", type=int, help="state size N (with --block-d, --t, --warps: one launch grid)")
    ap.add_argument("--block-d", default=None, help="channels per program, comma-separated")
    ap.add_argument("--t", default=None, help="steps per tile, comma-separated")
    ap.add_argument("--warps", default=None, help="warps per program, comma-separated")
    ap.add_argument("--maxnreg", type=int, default=None,
                    help="a register cap, as $MEDSEGMAMBA_TRITON_BWD_MAXNREG (default: the package's, MAXNREG)")
    ap.add_argument("--as-launched", action="store_true",
                    help="specialize unit strides and 16-divisibility as a launch on contiguous inputs does")
    ap.add_argument("--loops", action="store_true", help="also the instructions of each kernel's longest loop")
    ap.add_argument("--all-loops", action="store_true",
                    help="then every innermost loop of each kernel, one table per launch")
    ap.add_argument("--softplus-in-kernel", action="store_true",
                    help="build the backward kernels with delta's bias and softplus inside, as before session 16")
    args = ap.parse_args(argv)
    kernels = args.kernels.split(",")
    unknown = sorted(set(kernels) - set(KERNELS))
    if unknown:
        ap.error(f"--kernels: unknown {unknown}; expected some of {', '.join(KERNELS)}")
    if args.n is not None:
        ints = lambda text, default: [int(v) for v in (text or default).split(",")]  # noqa: E731
        grid = list(itertools.product([args.n], ints(args.block_d, "16"), ints(args.t, "2"), ints(args.warps, "4")))
        launches = {k: grid for k in kernels}
    else:
        launches = {k: LAUNCHES[k] for k in kernels}
    os.environ.setdefault("TRITON_CACHE_DIR", tempfile.mkdtemp(prefix="triton-sm90-"))
    loops = ("| loop instructions | of them MUFU.EX2 | instructions per element-step | EX2 per element-step "
             "| of them local loads and stores (spills) | shuffles | barriers | shared loads and stores "
             if args.loops else "")
    print("| kernel | N | block_d | T | warps | register cap | registers | stack (spills), bytes | shared, bytes | "
          f"programs / SM (by registers and shared memory) {loops}|")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" * 8 if args.loops else ""))
    for kernel, grid in launches.items():
        cap = args.maxnreg or MAXNREG.get(kernel)
        for n, block_d, t, warps in grid:
            r = resources(kernel, n, block_d, t, warps, cap, args.as_launched, args.softplus_in_kernel)
            extra = ""
            if args.loops:
                lp = loop_row(kernel, n, block_d, t, warps, cap, args.as_launched, args.softplus_in_kernel)
                extra = (f" {lp['instructions']} | {lp['ex2']} | {lp['per_step']:.1f} | {lp['ex2_per_step']:.2f} | "
                         f"{lp['local']} | {lp['shfl']} | {lp['bar']} | {lp['shared']} |")
            print(f"| {kernel} | {n} | {block_d} | {t} | {warps} | {cap or '-'} | {r['regs']} | {r['stack']} | "
                  f"{r['shared']} | {r['programs_per_sm']} |{extra}", flush=True)
    if args.all_loops:
        for kernel, grid in launches.items():
            cap = args.maxnreg or MAXNREG.get(kernel)
            for n, block_d, t, warps in grid:
                compiled = build(kernel, n, block_d, t, warps, cap, args.as_launched, args.softplus_in_kernel)
                print(f"\n{kernel}, N {n}, block_d {block_d}, T {t}, {warps} warps, register cap {cap or '-'}: "
                      "innermost loops\n\n| addresses | instructions | MUFU.EX2 | shuffles | shared loads and stores "
                      "| barriers | local loads and stores (spills) |\n|---|---:|---:|---:|---:|---:|---:|")
                for r in loop_table(cuobjdump(compiled, "-sass")):
                    print(f"| {r['start']:#06x}-{r['end']:#06x} | {r['instructions']} | {r['ex2']} | {r['shfl']} | "
                          f"{r['shared']} | {r['bar']} | {r['local']} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
