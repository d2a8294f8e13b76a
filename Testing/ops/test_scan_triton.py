"""The Triton kernels, forward and backward, through Triton's CPU interpreter vs the reference."""

import importlib.util

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")

CASES = ["full", "bare_noncontig", "chunked_full", "chunked_bare_noncontig_nosoftplus", "chunked_wide", "chunked_bf16",
         "chunked_by_env"]
# the chunked backward (T steps at once), after either forward
BWD_CASES = ["bwd_chunked_full", "bwd_chunked_after_chunked", "bwd_chunked_bare_noncontig_nosoftplus",
             "bwd_chunked_bf16", "bwd_chunked_full_partial", "bwd_chunked_partial_bf16",
             # the default tile body ($MEDSEGMAMBA_TRITON_BWD_VARIANT=scan); the rest run the other one, steps
             "bwd_chunked_full_scan", "bwd_chunked_scan_partial_bf16",
             # each channel block's states split over 2 or 4 programs ($MEDSEGMAMBA_TRITON_BWD_SPLIT)
             "bwd_chunked_full_scan_split2", "bwd_chunked_scan_split2_partial_bf16",
             "bwd_chunked_after_chunked_scan_split4", "bwd_chunked_bare_noncontig_nosoftplus_scan_split2"]
# the segment-parallel backward: passes 1 and 2 carry the adjoint across segments of checkpoint
# chunks, pass 3 is the chunked backward run on every segment at once
PAR_CASES = ["bwd_parallel_full", "bwd_parallel_two_segments", "bwd_auto_by_default", "bwd_parallel_after_chunked",
             "bwd_parallel_bare_noncontig_nosoftplus", "bwd_parallel_one_chunk", "bwd_parallel_partial_bf16",
             "bwd_parallel_chunk_tiles", "bwd_parallel_two_segments_scan", "bwd_parallel_scan_partial_bf16",
             # $MEDSEGMAMBA_TRITON_BWD_SPLIT=2, which the parallel backward leaves aside
             "bwd_parallel_two_segments_scan_split2"]


@pytest.fixture(scope="module")
def interpreted(run_check):
    return run_check("triton_interpret_check.py")


# the same cases with every fresh buffer full of NaN (triton_interpret_check.py): no kernel may read
# memory that no kernel wrote, such as a checkpoint's padded states
NAN_MEMORY_CASES = ["nan_memory_bwd_chunked_scan_partial_bf16", "nan_memory_bwd_chunked_partial_bf16",
                    "nan_memory_bwd_parallel_scan_partial_bf16", "nan_memory_bwd_chunked_after_chunked_scan_split4", "nan_memory_bwd_parallel_two_segments_scan", "nan_memory_bwd_chunked_full"]


@pytest.mark.parametrize("case", CASES + BWD_CASES + PAR_CASES + NAN_MEMORY_CASES)
def test_triton_matches_reference_forward_and_backward(interpreted, case):
    results = interpreted[case]
    for name, (max_err, mean_err, ref_max, same_dtype) in results.items():
        print(f"{case} {name}: max err {max_err:.3e} mean err {mean_err:.3e} (ref absmax {ref_max:.3g})")
    assert set(results) >= {"y", "du", "ddelta", "dA", "dB", "dC"}
    # float32: the fp32 state against float64; bfloat16: both round to bf16, at most one ulp apart
    tol = 2.0**-7 if case.endswith("bf16") else 2e-6
    for name, (max_err, _, ref_max, same_dtype) in results.items():
        assert same_dtype, name
        assert max_err <= tol * max(1.0, ref_max), name


def test_the_parallel_backward_fails_without_its_carried_adjoints(interpreted):
    # the same case as bwd_parallel_two_segments, with what passes 1 and 2 carry into each segment
    # zeroed: the gradients that flow back in time across segments must then be far off
    results = interpreted["bwd_parallel_carries_zeroed"]
    rel = {name: max_err / max(1.0, ref_max) for name, (max_err, _, ref_max, _) in results.items()}
    assert rel["y"] <= 2e-6  # the forward does not use them
    assert min(rel["du"], rel["ddelta"], rel["dA"], rel["dB"]) > 0.05, rel


def test_the_chosen_forward_kernel_is_the_one_launched(interpreted):
    launched = interpreted["launched"]
    assert launched["full"] == launched["bare_noncontig"] == ["seq"]
    assert all(launched[case] == ["chunked"] for case in CASES if case.startswith("chunked"))
    after_seq = ("bwd_chunked_full", "bwd_chunked_full_partial", "bwd_parallel_full", "bwd_chunked_full_scan",
                 "bwd_chunked_full_scan_split2")
    assert all(launched[case] == ["seq"] for case in after_seq)
    assert all(launched[case] == ["chunked"] for case in BWD_CASES + PAR_CASES if case not in after_seq)


def test_the_chosen_backward_kernel_is_the_one_launched(interpreted):
    launched = interpreted["launched_bwd"]
    assert all(launched[case] == ["seq"] for case in CASES)  # $MEDSEGMAMBA_TRITON_BWD=seq
    body = {case: "chunked" if "_scan" in case else "steps" for case in BWD_CASES + PAR_CASES}
    assert all(launched[case] == [body[case]] for case in BWD_CASES)
    assert all(launched[case] == ["local", "carry", body[case]] for case in PAR_CASES)


def test_forward_kernel_choice(monkeypatch):
    from medsegmamba.ops.triton import selective_scan as tscan

    monkeypatch.delenv(tscan.FWD_ENV_VAR, raising=False)
    assert tscan._fwd_kernel_name(None) == "chunked"  # the faster one on the H100 (0.51 vs 1.21 ms)
    monkeypatch.setenv(tscan.FWD_ENV_VAR, "seq")
    assert tscan._fwd_kernel_name(None) == "seq"
    assert tscan._fwd_kernel_name("chunked") == "chunked"  # the argument wins
    monkeypatch.setenv(tscan.FWD_ENV_VAR, "chunked")
    monkeypatch.setenv(tscan.FWD_ENV_VAR, "fast")
    with pytest.raises(ValueError, match=r"\$MEDSEGMAMBA_TRITON_FWD must be one of seq, chunked, got 'fast'"):
        tscan._fwd_kernel_name(None)
    with pytest.raises(ValueError, match=r"kernel must be one of seq, chunked, got 'parallel'"):
        tscan._fwd_kernel_name("parallel")


def test_backward_kernel_choice(monkeypatch):
    from medsegmamba.ops.triton import selective_scan as tscan

    monkeypatch.delenv(tscan.BWD_ENV_VAR, raising=False)
    assert tscan._bwd_kernel_name(None) == "auto"  # chunked or parallel by the grid's size
    monkeypatch.setenv(tscan.BWD_ENV_VAR, "seq")
    assert tscan._bwd_kernel_name(None) == "seq"
    assert tscan._bwd_kernel_name("chunked") == "chunked"  # the argument wins
    monkeypatch.setenv(tscan.BWD_ENV_VAR, "")
    assert tscan._bwd_kernel_name(None) == "auto"
    monkeypatch.setenv(tscan.BWD_ENV_VAR, "fast")
    with pytest.raises(ValueError,
                       match=r"\$MEDSEGMAMBA_TRITON_BWD must be one of seq, chunked, parallel, auto, gluon, "
                             r"got 'fast'"):
        tscan._bwd_kernel_name(None)
    assert tscan._bwd_kernel_name("parallel") == "parallel"
    with pytest.raises(ValueError,
                       match=r"bwd_kernel must be one of seq, chunked, parallel, auto, gluon, got 'pipelined'"):
        tscan._bwd_kernel_name("pipelined")


def test_bc_sums_choice(monkeypatch):
    import torch

    from medsegmamba.ops.triton import selective_scan as tscan

    monkeypatch.delenv(tscan.BC_ENV_VAR, raising=False)
    assert tscan._bc_sums("partial") == "partial"  # the chunked backward's default
    assert tscan._bc_sums("atomic") == "atomic"  # the Gluon backward's
    monkeypatch.setattr(torch, "are_deterministic_algorithms_enabled", lambda: True)
    assert tscan._bc_sums("atomic") == "partial"  # atomic adds vary in their order
    monkeypatch.setenv(tscan.BC_ENV_VAR, "atomic")
    assert tscan._bc_sums("partial") == "atomic"  # asked for
    monkeypatch.setenv(tscan.BC_ENV_VAR, "fast")
    with pytest.raises(ValueError, match=r"\$MEDSEGMAMBA_TRITON_BC must be one of atomic, partial, got 'fast'"):
        tscan._bc_sums("partial")


def test_bwd_chunked_config():
    from medsegmamba.ops.triton import selective_scan as tscan

    # paper size: the checkpoints' 16 channels x N=64, 4 warps, T=2: 16 elements of a (T, N,
    # channels) tensor per thread, the fastest launch of the H100 sweep
    chunk_t, warps = tscan._bwd_chunked_config(64, 16)
    assert (chunk_t, warps) == (2, 4)
    assert 16 * 64 * chunk_t // (32 * warps) == 16
    assert tscan._bwd_chunked_config(16, 16) == (8, 4)  # the default model's N=16
    assert tscan._bwd_chunked_config(5, 4, num_warps=1, chunk_t=2) == (2, 1)
    assert tscan.CHUNK % tscan._bwd_chunked_config(3, 1)[0] == 0  # capped at the checkpoint interval
    for bad in (3, 2 * tscan.CHUNK):
        with pytest.raises(ValueError, match=f"bwd chunk_t must be a power of two dividing {tscan.CHUNK}, got {bad}"):
            tscan._bwd_chunked_config(64, 16, chunk_t=bad)


def test_backward_tile_body_choice(monkeypatch):
    from medsegmamba.ops.triton import selective_scan as tscan

    monkeypatch.delenv(tscan.BWD_VARIANT_ENV_VAR, raising=False)
    assert tscan._bwd_variant() == "scan"  # twice as fast as steps on an H100 (session 9)
    monkeypatch.setenv(tscan.BWD_VARIANT_ENV_VAR, "steps")
    assert tscan._bwd_variant() == "steps"
    monkeypatch.setenv(tscan.BWD_VARIANT_ENV_VAR, "fast")
    with pytest.raises(ValueError, match=r"\$MEDSEGMAMBA_TRITON_BWD_VARIANT must be one of steps, scan, got 'fast'"):
        tscan._bwd_variant()
    # the steps body's launch: T=2 on 8 warps unless given
    assert tscan._bwd_chunked_config(64, 16, variant="steps") == (2, 8)
    assert tscan._bwd_chunked_config(16, 64, num_warps=4, chunk_t=4, variant="steps") == (4, 4)


def test_chunked_config():
    from medsegmamba.ops.triton import selective_scan as tscan

    # paper size: 1024 channels per group, N=64; T must divide the checkpoint interval
    block_d, block_n, chunk_t, warps = tscan._chunked_config(1024, 64)
    assert (block_d, block_n, chunk_t, warps) == (16, 64, 8, 2)  # session 6's sweep's fastest on the H100
    assert (block_n, tscan.CHUNK % chunk_t) == (64, 0)
    assert block_d * block_n * chunk_t // (32 * warps) == 128  # state-and-step elements per thread
    block_d, block_n, chunk_t, warps = tscan._chunked_config(128, 16)  # the default model's N
    assert (block_d, block_n, chunk_t, warps) == (16, 16, 16, 2)
    assert block_d * block_n * chunk_t // (32 * warps) == 64
    assert tscan._chunked_config(6, 5, chunk_t=4)[:3] == (8, 8, 4)
    for bad in (3, 2 * tscan.CHUNK):
        with pytest.raises(ValueError, match=f"chunk_t must be a power of two dividing {tscan.CHUNK}, got {bad}"):
            tscan._chunked_config(1024, 64, chunk_t=bad)
    with pytest.raises(ValueError, match="block_d must be a power of two, got 24"):
        tscan._chunked_config(1024, 64, block_d=24)


def test_auto_backward_takes_the_parallel_one_only_on_small_grids():
    from medsegmamba.ops.triton import selective_scan as tscan

    sms = tscan._INTERPRETER_SMS  # off CUDA, an H100's 132 multiprocessors
    # measured on an H100: parallel 2.1x faster at 64 programs, 5-8 % slower at 256 and 512
    assert [tscan._auto_bwd_kernel(p, "cpu") for p in (4, 64, sms)] == ["parallel"] * 3
    assert [tscan._auto_bwd_kernel(p, "cpu") for p in (sms + 1, 256, 512)] == ["chunked"] * 3


def test_segments_rule(monkeypatch):
    from medsegmamba.ops.triton import selective_scan as tscan

    monkeypatch.delenv(tscan.SEGMENTS_ENV_VAR, raising=False)
    small_ws = 2**20
    # enough segments for about 4096 programs, never more than the checkpoint chunks
    assert tscan._segments(None, 27, 64, small_ws) == 27
    assert tscan._segments(None, 27, 1024, small_ws) == 4
    assert tscan._segments(None, 27, 8192, small_ws) == 1
    # and at most 256 MiB of workspace, one per segment: the paper's size at batch 1 (64 MiB a segment)
    assert tscan._segments(None, 27, 512, 512 * 32 * 16 * 64 * 4) == 4
    assert tscan._segments(None, 27, 64, 300 * 2**20) == 1
    assert tscan._segments(5, 27, 64, small_ws) == 5
    assert tscan._segments(50, 27, 64, small_ws) == 27
    monkeypatch.setenv(tscan.SEGMENTS_ENV_VAR, "9")
    assert tscan._segments(None, 27, 64, small_ws) == 9
    assert tscan._segments(2, 27, 64, small_ws) == 2  # the argument wins
    for bad in ("0", "x", "-3"):
        monkeypatch.setenv(tscan.SEGMENTS_ENV_VAR, bad)
        with pytest.raises(ValueError, match=r"\$MEDSEGMAMBA_TRITON_SEGMENTS must be a positive integer"):
            tscan._segments(None, 27, 64, small_ws)


def test_backward_register_cap(monkeypatch):
    from medsegmamba.ops.triton import selective_scan as tscan

    monkeypatch.delenv(tscan.MAXNREG_ENV_VAR, raising=False)
    assert tscan._bwd_maxnreg() == {}
    monkeypatch.setenv(tscan.MAXNREG_ENV_VAR, "128")
    assert tscan._bwd_maxnreg() == {"maxnreg": 128}
    for bad in ("100", "300", "8", "many"):
        monkeypatch.setenv(tscan.MAXNREG_ENV_VAR, bad)
        with pytest.raises(ValueError, match="MEDSEGMAMBA_TRITON_BWD_MAXNREG must be a multiple of 8 in 24..255"):
            tscan._bwd_maxnreg()


def test_backward_state_split_choice(monkeypatch):
    import torch

    from medsegmamba.ops.triton import selective_scan as tscan

    monkeypatch.delenv(tscan.SPLIT_ENV_VAR, raising=False)
    assert tscan._bwd_split() == 1  # states whole until a GPU says otherwise
    monkeypatch.setenv(tscan.SPLIT_ENV_VAR, "2")
    assert tscan._bwd_split() == 2
    # a split adds du and ddelta over states, which delta's softplus (not linear) must not sit inside
    monkeypatch.setenv(tscan.BWD_VARIANT_ENV_VAR, "scan")
    u = torch.zeros(1, 4, 8)
    B = torch.zeros(1, 1, 4, 8)
    with pytest.raises(ValueError, match="a backward split over states takes delta without bias or softplus"):
        tscan._launch_bwd(u, u, u, torch.zeros(4, 4), B, B, None, None, True, torch.zeros(1, 1, 4, 4), 4, None,
                          "chunked")
    monkeypatch.setenv(tscan.SPLIT_ENV_VAR, "3")
    with pytest.raises(ValueError, match=r"\$MEDSEGMAMBA_TRITON_BWD_SPLIT must be one of 1, 2, 4, got '3'"):
        tscan._bwd_split()


@pytest.mark.parametrize("n,want", [(64, (4, 4, 2, 4, 16, 64, 128, 8)), (12, (4, 4, 2, 1, 16, 16, 128, 8)),
                                    (4, (1, 4, 2, 1, 16, 4, 128, 8))])
def test_gluon_backward_configuration(n, want):
    from medsegmamba.ops.triton import selective_scan as tscan

    spt_n, tpw_n, spt_d, warps, block_d, block_n, _, _ = got = tscan._gluon_bwd_config(n)
    assert got == want
    assert spt_n * tpw_n * warps == block_n >= n and block_d == spt_d * (32 // tpw_n)


@pytest.mark.parametrize("value", ["4,4,2", "4,4,2,2", "3,4,2,4", "4,4,0,4", "a,b,c,d", "4,4,2,4,100", "4,4,2,4,8,3",
                                   "4,4,2,4,8,8,8"])
def test_gluon_backward_launch_override_is_checked(monkeypatch, value):
    from medsegmamba.ops.triton import selective_scan as tscan

    monkeypatch.setenv(tscan.GLUON_BWD_ENV_VAR, value)
    with pytest.raises(ValueError, match=r"_BWD_GLUON must be 'SPT_N,TPW_N,SPT_D,warps\[,maxnreg\[,sub\]\]'"):
        tscan._gluon_bwd_config(64)
    monkeypatch.setenv(tscan.GLUON_BWD_ENV_VAR, "2,8,1,4")
    assert tscan._gluon_bwd_config(64) == (2, 8, 1, 4, 4, 64, 128, 8)
    monkeypatch.setenv(tscan.GLUON_BWD_ENV_VAR, "2,8,1,4,0")
    assert tscan._gluon_bwd_config(64) == (2, 8, 1, 4, 4, 64, 0, 8)
    monkeypatch.setenv(tscan.GLUON_BWD_ENV_VAR, "2,8,1,4,168,8")
    assert tscan._gluon_bwd_config(64) == (2, 8, 1, 4, 4, 64, 168, 8)


@pytest.mark.parametrize("bc", ["partial", "atomic", None])
def test_gluon_backward_sums_dB_and_dC_as_asked(bc, monkeypatch):
    # $MEDSEGMAMBA_TRITON_BC: a slice per channel block, summed after the kernel, or one zeroed
    # tensor the kernel adds into (ATOMIC, the default). The launch stands in for the kernel (Gluon needs a GPU)
    import torch

    from medsegmamba.ops.triton import scan_gluon
    from medsegmamba.ops.triton import selective_scan as tscan

    launched = {}

    class Kernel:
        def __getitem__(self, grid):
            return lambda *args, **kw: launched.update(dB=args[14].clone(), grid=grid, atomic=kw["ATOMIC"])

    monkeypatch.setattr(scan_gluon, "scan_bwd_kernel", Kernel())
    if bc is None:
        monkeypatch.delenv(tscan.BC_ENV_VAR, raising=False)
        bc = "atomic"
    else:
        monkeypatch.setenv(tscan.BC_ENV_VAR, bc)
    z = torch.zeros(2, 64, 8)  # u, dl, dy (B, D, L): 2 groups of 32 channels, N 64: 2 blocks of 16 a group
    tscan._gluon_bwd_op(z, z, z, torch.zeros(64, 64), torch.zeros(2, 2, 64, 8), torch.zeros(2, 2, 64, 8), None,
                        torch.zeros(2 * 2 * 2, 1, 16, 64), None, 2)
    assert launched["grid"] == (2, 2, 2) and launched["atomic"] == (bc == "atomic")
    assert launched["dB"].shape == ((1 if bc == "atomic" else 2), 2, 2, 64, 8)
    if bc == "atomic":
        assert not launched["dB"].any()  # the kernel adds into zeros


@pytest.mark.parametrize("bias", [True, False])
def test_gluon_backward_takes_deltas_bias_and_softplus_when_given(bias, monkeypatch):
    # With delta_bias or softplus the kernel gets delta itself, HAS_BIAS / SOFTPLUS, the bias, and a
    # zeroed (B, D) dbias it writes per batch element, summed over the batch here. The launch stands
    # in for the kernel (Gluon needs a GPU): it writes dbias rows 1 and 2
    import torch

    from medsegmamba.ops.triton import scan_gluon
    from medsegmamba.ops.triton import selective_scan as tscan

    launched = {}

    class Kernel:
        def __getitem__(self, grid):
            def launch(*args, **kw):
                launched.update(args=args, kw=kw, dbias_before=args[17].clone())
                args[17][0].fill_(1.0)
                args[17][1].fill_(2.0)
            return launch

    monkeypatch.setattr(scan_gluon, "scan_bwd_kernel", Kernel())
    z = torch.zeros(2, 64, 8)
    delta = torch.rand(2, 64, 8)
    delta_bias = torch.rand(64) if bias else None
    out = tscan._gluon_bwd_op(z, delta, z, torch.zeros(64, 64), torch.zeros(2, 2, 64, 8), torch.zeros(2, 2, 64, 8),
                              None, torch.zeros(2 * 2 * 2, 1, 16, 64), None, 2, delta_bias, True)
    args, kw = launched["args"], launched["kw"]
    assert args[1] is delta and kw["SOFTPLUS"] is True and kw["HAS_BIAS"] is bias
    assert args[10] is delta_bias if bias else args[10] is z  # a placeholder pointer without a bias
    assert launched["dbias_before"].shape == (2, 64) and not launched["dbias_before"].any()
    assert len(out) == 7 and torch.equal(out[6], torch.full((64,), 3.0))
    tscan._gluon_bwd_op(z, delta, z, torch.zeros(64, 64), torch.zeros(2, 2, 64, 8), torch.zeros(2, 2, 64, 8), None,
                        torch.zeros(2 * 2 * 2, 1, 16, 64), None, 2)
    assert launched["kw"]["SOFTPLUS"] is False and launched["kw"]["HAS_BIAS"] is False  # dl as it is


def test_bwd_delta_choice(monkeypatch):
    from medsegmamba.ops.triton import selective_scan as tscan

    monkeypatch.delenv(tscan.BWD_DELTA_ENV_VAR, raising=False)
    # auto: in the kernel when eager (faster there), around it under torch.compile (faster there)
    assert tscan._bwd_delta() == "kernel" and tscan._bwd_delta(compiling=True) == "outside"
    for where in ("kernel", "outside"):
        monkeypatch.setenv(tscan.BWD_DELTA_ENV_VAR, where)
        assert tscan._bwd_delta() == where and tscan._bwd_delta(compiling=True) == where
    monkeypatch.setenv(tscan.BWD_DELTA_ENV_VAR, "inside")
    with pytest.raises(ValueError,
                       match=r"\$MEDSEGMAMBA_TRITON_BWD_DELTA must be one of auto, outside, kernel, got 'inside'"):
        tscan._bwd_delta()


def test_auto_backward_takes_gluon_where_its_grid_fills_the_gpu(monkeypatch):
    import torch

    from medsegmamba.ops.triton import selective_scan as tscan

    monkeypatch.setattr(tscan, "_multiprocessors", lambda index: 132)  # an H100
    monkeypatch.setattr(tscan, "interpreting", lambda: False)
    monkeypatch.setattr(tscan, "_gluon_available", lambda: True)
    cuda = torch.device("cuda", 0)
    # the paper's scan at batch 1: 8 groups x 64 channel blocks x 4 warps = 2048 warps
    assert tscan._auto_gluon_bwd(1, 8, 1024, 64, cuda)
    # the default model's (8 groups x 128 channels, N 16: 1 warp a program): 256 warps at batch 4, 1024 at 16
    assert not tscan._auto_gluon_bwd(4, 8, 128, 16, cuda)
    assert tscan._auto_gluon_bwd(16, 8, 128, 16, cuda)
    assert not tscan._auto_gluon_bwd(16, 8, 1024, 64, torch.device("cpu"))
    monkeypatch.setattr(tscan, "_gluon_available", lambda: False)  # Triton without Gluon
    assert not tscan._auto_gluon_bwd(16, 8, 1024, 64, cuda)
    monkeypatch.setattr(tscan, "_gluon_available", lambda: True)
    monkeypatch.setattr(tscan, "interpreting", lambda: True)  # Gluon has no interpreter
    assert not tscan._auto_gluon_bwd(16, 8, 1024, 64, cuda)


def test_gluon_backward_refuses_the_interpreter(monkeypatch):
    import torch

    from medsegmamba.ops.triton import selective_scan as tscan

    monkeypatch.setattr(tscan, "interpreting", lambda: True)
    z = torch.zeros(1, 4, 8)
    with pytest.raises(RuntimeError, match="bwd_kernel='gluon' needs a GPU"):
        tscan._launch_bwd_gluon(z, z, z, torch.zeros(4, 4), torch.zeros(1, 1, 4, 8), torch.zeros(1, 1, 4, 8), None,
                                None, False, z)


@pytest.mark.gpu
@pytest.mark.parametrize("batch,dim,groups,n,length,dtype", [
    (2, 24, 3, 12, 131, "float32"),    # channels and states not multiples of the blocks, L of no chunk
    (1, 64, 2, 64, 200, "float32"),    # the paper's N
    (2, 32, 2, 16, 70, "bfloat16"),
    (1, 48, 1, 64, 300, "float32"),    # 3 channel blocks, 5 chunks, the last of 2 whole sub-chunks and a part
])
def test_gluon_backward_matches_the_reference_on_the_gpu(batch, dim, groups, n, length, dtype):
    """The Gluon backward ($MEDSEGMAMBA_TRITON_BWD=gluon): every gradient against the float64
    reference's, as the chunked backward is checked under the interpreter."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from medsegmamba.ops import selective_scan_ref
    from medsegmamba.ops.triton.selective_scan import selective_scan_triton

    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    ins = dict(u=r(batch, dim, length), delta=r(batch, dim, length) - 1.0,
               A=-torch.rand(dim, n, generator=g) * 3 - 0.1, B=r(batch, groups, n, length),
               C=r(batch, groups, n, length), D=r(dim), delta_bias=r(dim) * 0.5)
    low = {k: v.to(getattr(torch, dtype)) if k in ("u", "delta", "B", "C") else v for k, v in ins.items()}
    ref_in = {k: v.double().requires_grad_() for k, v in low.items()}
    dy = r(batch, dim, length)
    y_ref = selective_scan_ref(**ref_in)
    want = torch.autograd.grad((y_ref * dy.double()).sum(), list(ref_in.values()))
    gpu_in = {k: v.cuda().requires_grad_() for k, v in low.items()}
    y = selective_scan_triton(**gpu_in, bwd_kernel="gluon")
    got = torch.autograd.grad((y.float() * dy.cuda()).sum(), list(gpu_in.values()))
    tol = 2e-4 if dtype == "float32" else 2e-2
    for name, a, b in zip(ins, got, want):
        err = ((a.double().cpu() - b).norm() / b.norm().clamp_min(1e-12)).item()
        assert err < tol, (name, err)
