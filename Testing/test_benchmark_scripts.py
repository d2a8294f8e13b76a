"""The GPU benchmark scripts' CPU smoke modes run, write their results and refuse bad options, so a
device call does not fail on something the CPU could have caught (model_gpu.py --smoke takes about
5 minutes here and is left out)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(script, *args):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "MedSegMamba")}
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True,
                          text=True, timeout=300, env=env, cwd=ROOT)


def test_scan_gpu_smoke(tmp_path):
    proc = run("scan_gpu.py", "--out", str(tmp_path), "--smoke")
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["sizes"] == {"D": 64, "G": 8, "N": 8, "L": 96}
    assert {row["impl"] for row in res["accuracy"]} == {"ref"}
    # the reference in float32 / bfloat16 against itself in float64
    for row in res["accuracy"]:
        tol = 1e-5 if "float32" in row["case"] else 2e-2
        assert all(value < tol for key, value in row.items() if key not in ("case", "impl")), row
    assert (tmp_path / "results.md").read_text().startswith("device: cpu")


def test_scan_gpu_refuses_a_bad_size(tmp_path):
    for size in ("1,2", "64,7,8,96", "a,b,c,d"):
        proc = run("scan_gpu.py", "--out", str(tmp_path), "--smoke", "--size", size)
        assert proc.returncode == 2 and "--size must be D,G,N,L" in proc.stderr, size


def test_pipeline_bench_smoke(tmp_path):
    proc = run("pipeline_bench.py", "--out", str(tmp_path), "--smoke")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads((tmp_path / "results.json").read_text())
    assert rows and all(row["seconds"]["total"] > 0 and row["patches"] >= 1 for row in rows)
    assert (tmp_path / "results.csv").read_text().startswith("model,device,tiling,step")


def test_profile_gpu_smoke(tmp_path):
    proc = run("profile_gpu.py", "--out", str(tmp_path), "--smoke")
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["meta"]["tflop_per_patch"] > 0
    infer, train = res["cases"]
    assert (infer["mode"], train["mode"]) == ("infer", "train")
    for case in (infer, train):
        assert abs(sum(case["kinds"].values()) - case["ms_per_patch"]) < 1e-6 * case["ms_per_patch"] + 1e-9
        assert case["kinds"]["convolution"] > 0  # the tiny network is mostly convolutions on a CPU
    assert "slow_conv" in " ".join(t["name"] for t in infer["top"]) or "mkldnn" in " ".join(
        t["name"] for t in infer["top"])


def test_profile_gpu_layouts_and_modes(tmp_path):
    proc = run("profile_gpu.py", "--out", str(tmp_path), "--smoke", "--variant", "ours", "--channels-last", "both",
               "--modes", "infer", "--top", "3")
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["meta"]["variant"] == "ours"
    assert [(c["mode"], c["channels_last"]) for c in res["cases"]] == [("infer", False), ("infer", True)]
    assert all(c["wall_ms_per_patch"] > 0 and len(c["top"]) == 3 for c in res["cases"])
    assert "channels_last_3d" in (tmp_path / "results.md").read_text()
    bad = run("profile_gpu.py", "--out", str(tmp_path), "--smoke", "--modes", "infer,fly")
    assert bad.returncode == 2 and "--modes" in bad.stderr


def test_profile_gpu_names_the_operators_and_their_callers(tmp_path):
    # --ops: the operators whose own kernels (here: CPU time) cost most, each with the model code that
    # called it, or in the backward with the autograd node that ran it
    proc = run("profile_gpu.py", "--out", str(tmp_path), "--smoke", "--variant", "ours", "--modes", "train",
               "--ops", "4", "--top", "3")
    assert proc.returncode == 0, proc.stderr[-2000:]
    (case,) = json.loads((tmp_path / "results.json").read_text())["cases"]
    ops = case["ops"]
    assert len(ops) == 4 and all(o["op"].startswith("aten::") and o["calls"] >= 1 for o in ops)
    assert [o["ms_per_patch"] for o in ops] == sorted((o["ms_per_patch"] for o in ops), reverse=True)
    frames = [f for o in ops for f in o["stack"]]
    assert any("medsegmamba/models/" in f for f in frames) and any(f.endswith("Backward0") for f in frames)
    assert "| operator | its own kernels, ms / patch |" in (tmp_path / "results.md").read_text()


def test_profile_kinds(load_script):
    mod = load_script("benchmarks/profile_gpu.py")
    assert mod.kind_of("_chunked_scan_fwd_kernel") == "scan"
    assert mod.kind_of("sm90_xmma_fprop_implicit_gemm_bf16") == "convolution"
    assert mod.kind_of("nvjet_tst_128x64_64x4_1x2_h_bz_NNT") == "matmul"
    assert mod.kind_of("_fused_group_norm_fwd") == "norm"
    assert mod.kind_of("void at::native::elementwise_kernel<128, 4>") == "elementwise"
    assert mod.kind_of("aten::copy_") == "copy / layout"
    assert mod.kind_of("something_else") == "other"


def test_scan_bwd_segments_smoke(tmp_path):
    # through Triton's interpreter: every backward variant runs and agrees with the float64 reference
    proc = run("scan_bwd_segments.py", "--out", str(tmp_path), "--smoke", "--parts", "timings,accuracy")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert rows[0]["part"] == "meta" and rows[0]["device"].startswith("cpu")
    timed = [r for r in rows if r["part"] == "timings"]
    assert [r["bwd"] for r in timed] == ["chunked", "parallel/auto", "parallel/2 r128"]
    assert all(r.get("fwd_bwd_ms", 0) > 0 and "error" not in r for r in timed)
    accuracy = [r for r in rows if r["part"] == "accuracy"]
    assert {(r["case"], r["impl"]) for r in accuracy} == {
        (case, impl) for case in ("b1 float32", "b1 bfloat16") for impl in ("chunked", "parallel/auto")}
    for r in accuracy:
        tol = 1e-5 if "float32" in r["case"] else 2e-2
        assert all(v < tol for k, v in r.items() if k not in ("part", "case", "impl")), r
    assert "| timings | smoke b2 | parallel/auto |" in (tmp_path / "results.md").read_text()


def test_kernel_resources_builds_for_sm90_here(tmp_path):
    # no GPU: Triton builds the kernel for an H100 with the ptxas it ships, cuobjdump reads the cubin
    proc = run("kernel_resources.py", "--kernels", "bwd-carry,bwd-local", "--n", "16", "--block-d", "16",
               "--t", "2", "--warps", "4")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.split("|")[1:-1] for line in proc.stdout.splitlines()[2:]]
    assert [r[0].strip() for r in rows] == ["bwd-carry", "bwd-local"]
    for r in rows:
        regs, stack, programs = int(r[6]), int(r[7]), int(r[9])
        assert 16 <= regs <= 255 and stack >= 0 and 1 <= programs <= 16


def test_the_unrolled_backward_does_not_spill_as_launched():
    # the steps variant at the paper's launch (N 64, 16 channels, T 2, 8 warps) under the package's
    # 128-register cap, built as a launch on contiguous inputs builds it: two 8-warp programs per
    # multiprocessor, without spills
    proc = run("kernel_resources.py", "--kernels", "bwd-steps", "--n", "64", "--block-d", "16", "--t", "2",
               "--warps", "8", "--as-launched")
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = proc.stdout.splitlines()[2].split("|")[1:-1]
    assert (int(row[5]), int(row[6]), int(row[7]), int(row[9])) == (128, 128, 0, 2), row


def test_longest_innermost_loop_of_a_known_listing(load_script):
    """An outer loop (0x10-0x90) around two inner ones (0x20-0x40: 3 instructions, 0x50-0x80: 4):
    the longest inner one is counted, not the outer one, and predicates are dropped."""
    mod = load_script("benchmarks/kernel_resources.py")
    sass = "\n".join(f"        /*{a:04x}*/                   {t} ;" for a, t in [
        (0x00, "MOV R1, R2"), (0x10, "FADD R1, R1, R1"), (0x20, "MUFU.EX2 R3, R1"), (0x30, "FFMA R4, R3, R1, R4"),
        (0x40, "@P0 BRA 0x20"), (0x50, "MUFU.EX2 R5, R4"), (0x60, "FMUL R6, R5, R5"),
        (0x70, "@!P1 FFMA R7, R6, R6, R7"),
        (0x80, "@P2 BRA 0x50"), (0x90, "@P3 BRA 0x10"), (0xa0, "EXIT")])
    loop = mod.longest_loop(sass)
    assert loop["instructions"] == 4
    assert loop["opcodes"] == {"MUFU.EX2": 1, "FMUL": 1, "FFMA": 1, "BRA": 1}
    with pytest.raises(RuntimeError, match="no loop"):
        mod.longest_loop("        /*0000*/    EXIT ;")
    # --all-loops: both inner loops, in address order, with their ranges and counts
    rows = mod.loop_table(sass)
    got = [(r["start"], r["end"], r["instructions"], r["ex2"]) for r in rows]
    assert got == [(0x20, 0x40, 3, 1), (0x50, 0x80, 4, 1)]
    assert all(r["shfl"] == r["shared"] == r["bar"] == r["local"] == 0 for r in rows)


def test_kernel_resources_counts_the_forward_loop_here():
    # the path-walking forward at the paper's launch: one exponential per element-step, and the
    # (T, N, D) tile's 8 * 64 * 16 / 64 = 128 element-steps per thread in each pass of the loop
    proc = run("kernel_resources.py", "--kernels", "fwd-paths", "--n", "64", "--block-d", "16", "--t", "8",
               "--warps", "2", "--as-launched", "--loops")
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = proc.stdout.splitlines()[2].split("|")[1:-1]
    instructions, ex2, ex2_per_step = int(row[10]), int(row[11]), float(row[13])
    assert 128 <= ex2 <= 140 and abs(ex2_per_step - ex2 / 128) < 0.01
    assert 128 * 5 <= instructions <= 128 * 12


def test_flop_table_counts_a_known_layer(load_script):
    mod = load_script("benchmarks/flop_table.py")
    cfg = dict(channels=(1, 8, 16, 32, 64, 16), num_blocks=2, d_state=4, num_classes=4)
    rows = dict(mod.flop_table(cfg, patch=32))
    # the 1x1x1 head: 16 -> 4 channels at every one of 32^3 voxels, a multiply and an add each
    assert rows["Conv_1x1"] == 2 * 32 ** 3 * 16 * 4
    assert abs(sum(f for name, f in rows.items() if name != "total") - rows["total"]) < 1e-6 * rows["total"]
    assert "| Conv_1x1 | 0.0 |" in mod.to_markdown(list(rows.items()), cfg)


def test_kernel_resources_refuses_an_unknown_kernel():
    proc = run("kernel_resources.py", "--kernels", "bwd-fast")
    assert proc.returncode == 2 and "--kernels: unknown ['bwd-fast']" in proc.stderr


def test_ncu_sass_summary_on_a_known_export(tmp_path):
    """Three SASS lines with known stall samples: the shares, the opcodes (a predicate stripped) and
    the hottest line come out as counted by hand; a file without the column is a clear error."""
    header = ["Address", "Source", "Warp Stall Sampling (All Samples)", "Instructions Executed",
              "stall_wait", "stall_long_sb", "stall_wait (Not Issued)"]
    rows = [["0x10", "  FADD R1, R2, R3", "6", "100", "6", "0", "5"],
            ["0x20", "  @!P0 FADD.FTZ R4, R1, R1", "2", "100", "0", "2", "0"],
            ["0x30", "  LDG.E R5, [R6]", "12", "200", "3", "9", "0"]]
    export = tmp_path / "sass.csv"
    export.write_text("\n".join(",".join(f'"{c}"' for c in r)
                                for r in [["Kernel Name", "k"], header, *rows]) + "\n")
    proc = run("ncu_sass_summary.py", str(export), "--top", "1")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "3 SASS lines, 20 stall samples" in out
    assert "| wait | 45.0% |" in out and "| long_sb | 55.0% |" in out  # 9/20 and 11/20
    assert "| LDG | 60.0% | 50.0% |" in out and "| FADD | 40.0% | 50.0% |" in out
    assert "| 60.0% | 0x30 | `LDG.E R5, [R6]` | long_sb |" in out and "0x10 |" not in out.split("| address |")[1]
    bad = tmp_path / "bad.csv"
    bad.write_text('"Address","Source"\n"0x10","FADD"\n')
    proc = run("ncu_sass_summary.py", str(bad))
    assert proc.returncode != 0 and "bad.csv" in proc.stderr and "Warp Stall Sampling" in proc.stderr


def test_conv_layers_smoke(tmp_path):
    proc = run("conv_layers_gpu.py", "--out", str(tmp_path), "--smoke")
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((tmp_path / "results.json").read_text())
    assert set(res["layouts"]) == {"contiguous", "channels_last_3d"}
    rows = res["layouts"]["contiguous"]
    # every Conv3d of the tiny network runs once a forward pass: each is counted once
    import torch

    from medsegmamba.models import MedSegMamba

    convs = sum(isinstance(m, torch.nn.Conv3d) for m in MedSegMamba(**res["meta"]["config"]).modules())
    assert sum(r["calls"] for r in rows) == convs
    assert any(r["groups"] > 1 for r in rows)  # SS3D's depthwise convolution
    assert {r["in_layout"] for r in res["layouts"]["channels_last_3d"]} >= {"channels_last_3d"}
    assert all(r["ms_per_patch"] > 0 and r["transform_ms_per_patch"] == 0 for r in rows)  # a CPU has no cuDNN
    assert res["graphs"]["graphs"] >= 1


def test_conv_layers_train_and_relayout(tmp_path):
    # --train replays each convolution's forward and backward; --relayout each once more in the other layout
    proc = run("conv_layers_gpu.py", "--out", str(tmp_path), "--smoke", "--channels-last", "no", "--no-explain",
               "--train", "--relayout")
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["meta"]["train"] is True
    assert set(res["layouts"]) == {"contiguous", "contiguous, replayed in channels_last_3d"}
    first, again = res["layouts"]["contiguous"], res["layouts"]["contiguous, replayed in channels_last_3d"]
    assert [r["names"] for r in first] == [r["names"] for r in again]
    assert {r["in_layout"] for r in again} == {"channels_last_3d"}
    assert "forward + backward" in (tmp_path / "results.md").read_text()


def test_scan_bwd_split_smoke(tmp_path):
    proc = run("scan_bwd_split.py", "--out", str(tmp_path), "--smoke")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert [r["split"] for r in rows] == [1, 2, 4]
    # the split backward's gradients against the whole one's, through the interpreter
    assert all("error" not in r and r["max_abs_vs_whole"] < 1e-5 for r in rows), rows


def test_the_gluon_walk_builds_for_sm90_here():
    # SS3D's walk in Gluon at the package's paper launch (N 64, 64 channels, T 4, 4 warps), built as
    # a launch builds it: no spills, at least three programs a multiprocessor, one exponential per
    # element-step (4 * 64 * 64 / 128 = 128 of them per thread in each pass of the loop), and fewer
    # instructions per element-step than the chunked kernel it stands beside
    pytest.importorskip("triton.experimental.gluon")
    row = lambda kernel, block_d, t, warps: run(  # noqa: E731
        "kernel_resources.py", "--kernels", kernel, "--as-launched", "--loops", "--n", "64", "--block-d", str(block_d),
        "--t", str(t), "--warps", str(warps))
    proc = row("walk-gluon", 64, 4, 4)
    assert proc.returncode == 0, proc.stderr[-2000:]
    gluon = proc.stdout.splitlines()[2].split("|")[1:-1]
    assert gluon[0].strip() == "walk-gluon"
    regs, stack, programs, ex2, per_step = int(gluon[6]), int(gluon[7]), int(gluon[9]), int(gluon[11]), float(gluon[12])
    assert regs <= 168 and stack == 0 and programs >= 3
    assert 128 <= ex2 <= 136
    chunked = row("fwd-paths", 16, 8, 2)  # the chunked kernel at its own launch (selective_scan.py's _chunked_config)
    assert per_step < float(chunked.stdout.splitlines()[2].split("|")[1:-1][12])
    # under autograd it also stores the checkpoints, in a branch of the loop taken once in 16 passes
    # (64-step chunks, 4 steps a pass), and its registers stay
    ckpt = row("walk-gluon-ckpt", 64, 4, 4).stdout.splitlines()[2].split("|")[1:-1]
    assert int(ckpt[6]) <= 168 and int(ckpt[7]) == 0 and int(ckpt[9]) >= 3
    assert 0 < int(ckpt[10]) - int(gluon[10]) <= 100 and int(ckpt[11]) == ex2


def test_the_gluon_backward_builds_for_sm90_here():
    # scan_gluon.scan_bwd_kernel at the package's launch for N 64 (16 channels, 4 warps, sub-chunks
    # of 8 steps, 128 registers): four programs a multiprocessor, no spills in its longest loop (a
    # pair of steps, backwards) and there one exponential per element-step (the pair's recompute,
    # reused as the adjoint's decay) where the chunked backward has two, in fewer instructions per
    # element-step
    pytest.importorskip("triton.experimental.gluon")
    cells = lambda proc: proc.stdout.splitlines()[2].split("|")[1:-1]  # noqa: E731
    args = ("--as-launched", "--loops", "--n", "64", "--block-d", "16", "--warps", "4")
    gluon = run("kernel_resources.py", "--kernels", "bwd-gluon", *args, "--t", "8")
    chunked = run("kernel_resources.py", "--kernels", "bwd-chunked", *args, "--t", "2")
    assert gluon.returncode == 0 and chunked.returncode == 0, gluon.stderr[-2000:] + chunked.stderr[-2000:]
    g, c = cells(gluon), cells(chunked)
    assert int(g[5]) == 128 and int(g[9]) == 4 and int(g[14]) == 0
    assert abs(float(g[13]) - 1.0) < 0.05 and abs(float(c[13]) - 2.0) < 0.05
    assert float(g[12]) < float(c[12])


def test_the_gluon_backward_walking_the_paths_builds_for_sm90_here():
    # the same kernel with PATHS (SS3D's walk under autograd; bf16 u, B, C) at the package's launch:
    # four programs a multiprocessor at 128 registers, and no spills in its longest loop
    pytest.importorskip("triton.experimental.gluon")
    proc = run("kernel_resources.py", "--kernels", "bwd-gluon-paths", "--as-launched", "--loops", "--n", "64",
               "--block-d", "16", "--warps", "4", "--t", "8")
    assert proc.returncode == 0, proc.stderr[-2000:]
    cells = proc.stdout.splitlines()[2].split("|")[1:-1]
    assert cells[0].strip() == "bwd-gluon-paths"
    assert int(cells[6]) <= 128 and int(cells[9]) == 4 and int(cells[14]) == 0
    assert int(cells[17]) > 0  # shared loads and stores in it (the steps' inputs at least)


def test_the_gluon_backwards_atomic_sums_build_for_sm90_here(monkeypatch):
    # ATOMIC (the default; $MEDSEGMAMBA_TRITON_BC=partial turns it off): the kernel adds dB and dC with
    # reductions to global memory (REDG: reductions in L2, no value returned) where partial stores
    # slices, at the same registers
    pytest.importorskip("triton.experimental.gluon")
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import kernel_resources

    built = {k: kernel_resources.build(k, 64, 16, 8, 4, 128, as_launched=True)
             for k in ("bwd-gluon-paths", "bwd-gluon-atomic-paths")}
    sass = {k: kernel_resources.cuobjdump(c, "-sass").splitlines() for k, c in built.items()}
    reds = {k: sum(" REDG." in line or " RED." in line for line in lines) for k, lines in sass.items()}
    assert reds["bwd-gluon-paths"] == 0 and reds["bwd-gluon-atomic-paths"] > 0
    regs = {k: kernel_resources.cuobjdump(c, "-res-usage").split("REG:")[1].split()[0] for k, c in built.items()}
    assert regs["bwd-gluon-paths"] == regs["bwd-gluon-atomic-paths"]


def test_the_gluon_backward_with_deltas_softplus_builds_for_sm90_here(monkeypatch):
    # HAS_BIAS, SOFTPLUS ($MEDSEGMAMBA_TRITON_BWD_DELTA=kernel): delta's bias and softplus as each
    # sub-chunk is staged, and their gradients as it is written. The loops over the states (the
    # adjoint's pairs, their states recomputed) stay as they are, at the same registers; a
    # logarithm (softplus) appears outside them, and a reduction of dbias's addends only at the end
    pytest.importorskip("triton.experimental.gluon")
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import kernel_resources

    built = {k: kernel_resources.build(k, 64, 16, 8, 4, 128, as_launched=True)
             for k in ("bwd-gluon-atomic-paths", "bwd-gluon-delta-paths")}
    sass = {k: kernel_resources.cuobjdump(c, "-sass") for k, c in built.items()}
    loops = {k: kernel_resources.inner_loops(s) for k, s in sass.items()}
    # the adjoint's loop over pairs of steps: the one with the shuffles of dB's and dC's sums
    pairs = {k: max(ls, key=lambda c: c["SHFL.BFLY"]) for k, ls in loops.items()}
    # register moves left out: where the allocator puts values differs between two builds of one
    # loop (Triton 3.8: 4 more MOVs in one of these since session 27's kernel; 3.6: none more)
    size = {k: sum(n for op, n in c.items() if "MOV" not in op) for k, c in pairs.items()}
    assert pairs["bwd-gluon-atomic-paths"]["SHFL.BFLY"] == pairs["bwd-gluon-delta-paths"]["SHFL.BFLY"] > 0
    assert abs(size["bwd-gluon-atomic-paths"] - size["bwd-gluon-delta-paths"]) <= 2, size
    assert not any(op.startswith(("LDL", "STL")) for op in pairs["bwd-gluon-delta-paths"])  # no spills in it
    regs = {k: kernel_resources.cuobjdump(c, "-res-usage").split("REG:")[1].split()[0] for k, c in built.items()}
    assert regs["bwd-gluon-atomic-paths"] == regs["bwd-gluon-delta-paths"]
    # exponentials: the delta kernel adds its softplus's (pass A and B stage each sub-chunk)
    ex2 = {k: s.count("MUFU.EX2") for k, s in sass.items()}
    assert ex2["bwd-gluon-delta-paths"] > ex2["bwd-gluon-atomic-paths"]


def test_the_backward_patches_apply_without_the_patch_tool(load_script, tmp_path):
    # gpu_patched_kernels.sh makes the device's five kernels with apply_patch.py (its image need not
    # have `patch`): p1 reversed out of main's scan_gluon.py, p2 and p3 in turn on main. Each must
    # apply as it stands, and give what `patch` gives where this machine has it
    import shutil

    ap = load_script("scripts/apply_patch.py")
    rel = "MedSegMamba/medsegmamba/ops/triton/scan_gluon.py"
    main = (ROOT / rel).read_text()
    patches = {name: ap.parse((ROOT / "scripts" / "patches" / f"{name}.patch").read_text())
               for name in ("bwd_skip_unread_steps", "bwd_lane_sums", "bwd_state_sums")}
    assert all(len(files) == 1 and files[0][0] == rel for files in patches.values())
    hunks = {name: files[0][1] for name, files in patches.items()}
    before = ap.apply(main, hunks["bwd_skip_unread_steps"], reverse=True)
    assert before != main and ap.apply(before, hunks["bwd_skip_unread_steps"]) == main
    with pytest.raises(ap.PatchError, match="does not apply"):  # p1 is on main already
        ap.apply(main, hunks["bwd_skip_unread_steps"])
    p2 = ap.apply(main, hunks["bwd_lane_sums"])
    p3 = ap.apply(p2, hunks["bwd_state_sums"])
    assert "KEEP: gl.constexpr = TPW_D // 2 if TPW_D > 1 else 1" in p2  # the line p2full changes
    assert "def _state_sums" in p3 and "def _state_sums" not in p2
    if shutil.which("patch"):
        for name, text, want in (("bwd_lane_sums", main, p2), ("bwd_state_sums", p2, p3)):
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_text(text)
            subprocess.run(["patch", "-p1", "--silent", "-i", str(ROOT / "scripts" / "patches" / f"{name}.patch")],
                           cwd=tmp_path, check=True)
            assert (tmp_path / rel).read_text() == want, name
