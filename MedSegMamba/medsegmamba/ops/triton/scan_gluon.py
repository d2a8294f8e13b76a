"""SS3D's inference scan written in Gluon, Triton's language with explicit layouts.

`_scan_fwd_chunked_kernel` (scan_kernels.py) leaves the layout of its (T, N, channels) tiles to
Triton, which spreads states and channels over lanes in ways that cost about 3 instructions in
8 per element-step in moving B, C, delta and u between layouts (through shared memory) and in
cross-lane sums (issue #2, session 16's count). Here the layout is chosen: each thread owns
SPT_N states of SPT_D channels of the state (BLOCK_N, BLOCK_D) and walks the steps one at a time,
so per step it reads its SPT_N values of B and C and SPT_D of delta and delta*u from shared
memory (broadcast to the threads that share them), and the sum over states for y is SPT_N - 1
additions in the thread and log2(TPW_N) shuffles. Per element-step the recurrence needs one
multiply and one exponential for exp(delta A), one multiply for delta u B and two fused
multiply-adds for the state and y; as built for sm_90 the loop executes 7.5-7.8 instructions per
element-step against the chunked kernel's 8.3, in 127 registers against 244, so a multiprocessor
holds 16 warps instead of 8 (benchmarks/kernel_resources.py). On an H100 it is 1.5 times faster
at batch 8 (benchmarks/results/2026-12-07-h100-s18/).

Each chunk of T steps is loaded (the rows SS3D's path visits), converted to float32, its delta
put through bias and softplus once per (step, channel), and stored in shared memory; the next
chunk's loads are issued before this chunk's steps run, so their latency hides behind them.

Gluon has no interpreter: this compiles anywhere (tests build it for sm_90 on the CPU machine) but
runs only on a CUDA GPU, where Testing/ops/test_scan_along_paths.py (`pytest -m gpu`) checks it
against a float64 loop and benchmarks/scan_walk_gpu.py times it against the chunked kernel.
"""

from triton.experimental import gluon
from triton.experimental.gluon import language as gl

# a barrier over the program's threads: gl.thread_barrier in Triton 3.6 (the device's), gl.barrier since
_barrier = gl.thread_barrier if hasattr(gl, "thread_barrier") else gl.barrier


@gluon.jit
def _softplus(x):
    # scan_kernels._softplus in Gluon: torch's softplus (threshold 20), log1p(exp(x)) accurate for very negative x
    z = gl.exp(gl.minimum(x, 20.0))
    w = 1.0 + z
    lp = gl.where(w == 1.0, z, gl.log(w) * (z / (w - 1.0)))
    return gl.where(x > 20.0, x, lp)


@gluon.jit
def _exp2_ftz(x):
    # One MUFU.EX2. gl.exp2 lowers to the non-flushing ex2.approx.f32, around which ptxas adds
    # a scale-and-select for denormal results; decays below 2^-126 flushing to 0 change nothing.
    return gl.inline_asm_elementwise("ex2.approx.ftz.f32 $0, $1;", "=r,r", [x], dtype=gl.float32,
                                     is_pure=True, pack=1)


@gluon.jit
def _load_raw(path_row, u_base, dt_base, B_base, C_base, t0, length, s_ul, s_tl, s_bl, s_cl, s_bn, s_cn,
              d_loc, d_ok, n, n_ok, T: gl.constexpr, LT: gl.constexpr, LTN: gl.constexpr):
    """The raw (storage dtype) u, delta (T, BLOCK_D) and B, C (T, BLOCK_N) of steps t0 .. t0+T-1, read
    at the rows the path visits, and the rows (for y's store)."""
    steps = t0 + gl.arange(0, T, layout=gl.SliceLayout(1, LT))
    live = steps < length
    rows = gl.load(path_row + steps, mask=live, other=0)
    ok = live[:, None] & d_ok[None, :]
    u = gl.load(u_base + rows[:, None] * s_ul + d_loc[None, :], mask=ok, other=0.0)
    dt = gl.load(dt_base + rows[:, None] * s_tl + d_loc[None, :], mask=ok, other=0.0)
    steps_n = t0 + gl.arange(0, T, layout=gl.SliceLayout(1, LTN))
    live_n = steps_n < length
    rows_n = gl.load(path_row + steps_n, mask=live_n, other=0)
    ok_n = live_n[:, None] & n_ok[None, :]
    B = gl.load(B_base + rows_n[:, None] * s_bl + n[None, :] * s_bn, mask=ok_n, other=0.0)
    C = gl.load(C_base + rows_n[:, None] * s_cl + n[None, :] * s_cn, mask=ok_n, other=0.0)
    return rows, live, u, dt, B, C


@gluon.jit
def scan_paths_fwd_kernel(
    u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, Dskip_ptr, bias_ptr, y_ptr, path_ptr,
    length, dim_group, n_state,
    s_ub, s_ul, s_tb, s_tg, s_tl, s_ad, s_an,
    s_bb, s_bg, s_bl, s_bn, s_cb, s_cg, s_cl, s_cn, s_yb, s_yl, s_yg,
    HAS_D: gl.constexpr, HAS_BIAS: gl.constexpr, SOFTPLUS: gl.constexpr,
    SPT_N: gl.constexpr, TPW_N: gl.constexpr, SPT_D: gl.constexpr, T: gl.constexpr,
    LANES_D: gl.constexpr, LANES_N: gl.constexpr,
):
    # One program: SPT_D * (32 // TPW_N) * num_warps channels of one group of one batch element,
    # all BLOCK_N = SPT_N * TPW_N states. u is (Bt, L, Dg), delta (Bt, G, L, Dg), B and C
    # (Bt, G, L, N), y (Bt, L, G, Dg): channels contiguous (stride 1) in u, delta and y.
    # Step t of group g reads and writes row path[g, t].
    W: gl.constexpr = gl.num_warps()
    TPW_D: gl.constexpr = 32 // TPW_N
    BLOCK_N: gl.constexpr = SPT_N * TPW_N
    BLOCK_D: gl.constexpr = SPT_D * TPW_D * W
    # the state (BLOCK_N, BLOCK_D): states fastest within a thread, so B and C come as vectors
    LS: gl.constexpr = gl.BlockedLayout([SPT_N, SPT_D], [TPW_N, TPW_D], [1, W], [0, 1])
    LD: gl.constexpr = gl.SliceLayout(0, LS)   # (BLOCK_D,): delta, delta*u and y of one step
    LN: gl.constexpr = gl.SliceLayout(1, LS)   # (BLOCK_N,): B and C of one step
    # chunk tiles (T, BLOCK_D) and (T, BLOCK_N) with LANES_D (LANES_N) lanes along channels (states),
    # min(32, BLOCK_D) (min(32, BLOCK_N)): loads coalesced, softplus once per (step, channel)
    LT: gl.constexpr = gl.BlockedLayout([1, 1], [32 // LANES_D, LANES_D], [W, 1], [1, 0])
    LTN: gl.constexpr = gl.BlockedLayout([1, 1], [32 // LANES_N, LANES_N], [W, 1], [1, 0])
    # (T, width) buffers, row-major without swizzling; written whole, read a step's row at a time
    # through the same bytes seen with a rank-1 layout (the leading axis then indexes the rows)
    SH: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [1, 0])
    ROW: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [0])

    pid_b, pid_g, pid_c = gl.program_id(0), gl.program_id(1), gl.program_id(2)
    b64 = pid_b.to(gl.int64)
    # the state's indices
    d_s = pid_c * BLOCK_D + gl.arange(0, BLOCK_D, layout=LD)
    n_s = gl.arange(0, BLOCK_N, layout=LN)
    ok_s = (n_s < n_state)[:, None] & (d_s < dim_group)[None, :]
    A = gl.load(A_ptr + (pid_g * dim_group + d_s)[None, :] * s_ad + n_s[:, None] * s_an, mask=ok_s, other=0.0)
    A2 = A.to(gl.float32) * 1.4426950408889634
    # the chunk tiles' indices
    d_t = pid_c * BLOCK_D + gl.arange(0, BLOCK_D, layout=gl.SliceLayout(0, LT))
    d_ok = d_t < dim_group
    n_t = gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, LTN))
    n_ok = n_t < n_state
    bias = gl.zeros([BLOCK_D], gl.float32, layout=gl.SliceLayout(0, LT))
    if HAS_BIAS:
        bias = gl.load(bias_ptr + pid_g * dim_group + d_t, mask=d_ok, other=0.0).to(gl.float32)
    Dskip = gl.zeros([BLOCK_D], gl.float32, layout=gl.SliceLayout(0, LT))
    if HAS_D:
        Dskip = gl.load(Dskip_ptr + pid_g * dim_group + d_t, mask=d_ok, other=0.0).to(gl.float32)

    path_row = path_ptr + pid_g * length
    u_base = u_ptr + b64 * s_ub
    dt_base = dt_ptr + b64 * s_tb + pid_g * s_tg
    B_base = B_ptr + b64 * s_bb + pid_g * s_bg
    C_base = C_ptr + b64 * s_cb + pid_g * s_cg
    y_base = y_ptr + b64 * s_yb + pid_g * s_yg

    dl_s = gl.allocate_shared_memory(gl.float32, [T, BLOCK_D], SH)
    dlu_s = gl.allocate_shared_memory(gl.float32, [T, BLOCK_D], SH)
    Du_s = gl.allocate_shared_memory(gl.float32, [T, BLOCK_D], SH)
    B_s = gl.allocate_shared_memory(gl.float32, [T, BLOCK_N], SH)
    C_s = gl.allocate_shared_memory(gl.float32, [T, BLOCK_N], SH)
    dl_r = dl_s._reinterpret(gl.float32, [T, BLOCK_D], ROW)
    dlu_r = dlu_s._reinterpret(gl.float32, [T, BLOCK_D], ROW)
    Du_r = Du_s._reinterpret(gl.float32, [T, BLOCK_D], ROW)
    B_r = B_s._reinterpret(gl.float32, [T, BLOCK_N], ROW)
    C_r = C_s._reinterpret(gl.float32, [T, BLOCK_N], ROW)
    d_ok_s = d_s < dim_group

    h = gl.zeros([BLOCK_N, BLOCK_D], gl.float32, layout=LS)
    rows_n, live_n, u_n, dt_n, B_n, C_n = _load_raw(path_row, u_base, dt_base, B_base, C_base, 0, length, s_ul, s_tl,
                                                    s_bl, s_cl, s_bn, s_cn, d_t, d_ok, n_t, n_ok, T, LT, LTN)
    for t0 in range(0, length, T):
        live, u, dt, Bc, Cc = live_n, u_n, dt_n, B_n, C_n
        x = dt.to(gl.float32) + bias[None, :]
        dl = x
        if SOFTPLUS:
            dl = _softplus(x)
        # steps past the end: delta 0, so exp(0 A) = 1 and delta u B = 0 leave the state as it is
        dl = gl.where(live[:, None], dl, 0.0)
        uf = u.to(gl.float32)
        # the smem rows of the last chunk have been read by every thread (the barrier at its end)
        dl_s.store(dl)
        dlu_s.store(dl * uf)
        Du_s.store(Dskip[None, :] * uf)
        B_s.store(Bc.to(gl.float32))
        C_s.store(Cc.to(gl.float32))
        _barrier()
        rows_n, live_n, u_n, dt_n, B_n, C_n = _load_raw(path_row, u_base, dt_base, B_base, C_base, t0 + T, length,
                                                        s_ul, s_tl, s_bl, s_cl, s_bn, s_cn, d_t, d_ok, n_t, n_ok, T,
                                                        LT, LTN)
        # only reads of shared memory in here, so no barrier between steps; y goes straight out,
        # from the threads that hold it (Triton stores a replicated value once)
        for k in gl.static_range(T):
            t = t0 + k
            row = gl.load(path_row + t, mask=t < length, other=0)
            dl_k = dl_r.index(k).load(LD)
            dlu_k = dlu_r.index(k).load(LD)
            B_k = B_r.index(k).load(LN)
            C_k = C_r.index(k).load(LN)
            h = _exp2_ftz(dl_k[None, :] * A2) * h + dlu_k[None, :] * B_k[:, None]
            y = gl.sum(h * C_k[:, None], axis=0) + Du_r.index(k).load(LD)
            gl.store(y_base + row * s_yl + d_s, y, mask=d_ok_s & (t < length))
        _barrier()
