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

# Gluon kernels call @triton.jit helpers on their tensors as they are
from .scan_kernels import _softplus

# a barrier over the program's threads: gl.thread_barrier in Triton 3.6 (the device's), gl.barrier since
_barrier = gl.thread_barrier if hasattr(gl, "thread_barrier") else gl.barrier


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


@gluon.jit
def _bwd_step(g, a_next, h_s, ah_s, dl_s, dlu_s, u_s, B_s, C_s, dy_s, A, Dskip, dA_acc, dD_acc,
              du_ptr, ddl_ptr, dB_ptr, dC_ptr, out_row, bc_row, t, length, d_ok, n_ok, HAS_D: gl.constexpr):
    """One step of the adjoint, last step first: g_t = exp(dl_{t+1} A) g_{t+1} + C_t dy_t, and the
    step's gradients. h_s is the state after the step, ah_s = exp(dl_t A) h_{t-1} (the state
    before it, decayed). Stores du, ddl (its channels) and dB, dC (sums over its channels) at t."""
    live = t < length
    g = a_next * g + C_s[:, None] * dy_s[None, :]
    gl.store(dB_ptr + bc_row + t, gl.sum(g * dlu_s[None, :], axis=1), mask=n_ok & live)
    gl.store(dC_ptr + bc_row + t, gl.sum(h_s * dy_s[None, :], axis=1), mask=n_ok & live)
    gah = g * ah_s
    dA_acc += gah * dl_s[None, :]
    gB = gl.sum(g * B_s[:, None], axis=0)
    ddl = gl.sum(gah * A, axis=0) + gB * u_s
    du = gB * dl_s
    if HAS_D:
        du += Dskip * dy_s
        dD_acc += dy_s * u_s
    gl.store(du_ptr + out_row + t, du, mask=d_ok & live)
    gl.store(ddl_ptr + out_row + t, ddl, mask=d_ok & live)
    return g, dA_acc, dD_acc


@gluon.jit
def _step_inputs(u_row, dl_row, B_row, C_row, dy_row, t, length, s_ul, s_tl, s_bl, s_cl, s_yl, d_ok, n_ok):
    """u, dl, dy (channels) and B, C (states) of step t in float32; 0 past the end (dl 0: the identity step)."""
    live = t < length
    u = gl.load(u_row + t * s_ul, mask=d_ok & live, other=0.0).to(gl.float32)
    dl = gl.load(dl_row + t * s_tl, mask=d_ok & live, other=0.0).to(gl.float32)
    dy = gl.load(dy_row + t * s_yl, mask=d_ok & live, other=0.0).to(gl.float32)
    B = gl.load(B_row + t * s_bl, mask=n_ok & live, other=0.0).to(gl.float32)
    C = gl.load(C_row + t * s_cl, mask=n_ok & live, other=0.0).to(gl.float32)
    return u, dl, dy, B, C


@gluon.jit
def scan_bwd_kernel(
    u_ptr, dl_ptr, A_ptr, B_ptr, C_ptr, Dskip_ptr, dy_ptr, ckpt_ptr, ws_ptr,
    du_ptr, ddl_ptr, dA_ptr, dB_ptr, dC_ptr, dD_ptr,
    length, n_chunks, groups, dim, dim_group, n_state, part_stride,
    s_ub, s_ud, s_ul, s_tb, s_td, s_tl, s_ad, s_an,
    s_bb, s_bg, s_bn, s_bl, s_cb, s_cg, s_cn, s_cl, s_yb, s_yd, s_yl,
    HAS_D: gl.constexpr, CHUNK: gl.constexpr, SPT_N: gl.constexpr, TPW_N: gl.constexpr, SPT_D: gl.constexpr,
):
    # PROTOTYPE (issue #2, session 18), opt-in through $MEDSEGMAMBA_TRITON_BWD=gluon
    # (selective_scan._launch_bwd_gluon): exact against float64 on an H100, with fewer instructions
    # than the chunked kernel (benchmarks/kernel_resources.py --kernels bwd-gluon), but 2.2 times
    # slower, not yet profiled. Suspects: its per-step loads below (one float per channel, channels
    # a row of L apart) and its narrow channel blocks, which multiply the dB/dC slices. To try:
    # stage each tile through shared memory, as the forward above does, with wider channel
    # blocks. The backward of one scan
    # in _scan_bwd_chunked_kernel's contract (delta's bias and softplus applied outside; dl
    # given), its tiles of 2 steps walked one step at a
    # time in the forward kernel's explicit layout: each thread owns SPT_N states of SPT_D
    # channels. Per element-step: 2 exponentials (the chunk's recompute into tile starts, the
    # tile's recompute, whose exp(dl A) is also the adjoint's decay), against the chunked kernel's 3.
    # du, ddl (B, D, L), dB, dC: a (B, G, N, L) slice per channel block (`part_stride` apart),
    # dA (B, D, N) and dD (B, D) a row per batch element, as the chunked kernel's PARTIAL launch.
    W: gl.constexpr = gl.num_warps()
    TPW_D: gl.constexpr = 32 // TPW_N
    BLOCK_N: gl.constexpr = SPT_N * TPW_N
    BLOCK_D: gl.constexpr = SPT_D * TPW_D * W
    LS: gl.constexpr = gl.BlockedLayout([SPT_N, SPT_D], [TPW_N, TPW_D], [1, W], [0, 1])
    LD: gl.constexpr = gl.SliceLayout(0, LS)
    LN: gl.constexpr = gl.SliceLayout(1, LS)

    pid_b, pid_g, pid_c = gl.program_id(0), gl.program_id(1), gl.program_id(2)
    b64 = pid_b.to(gl.int64)
    d_blk = gl.arange(0, BLOCK_D, layout=LD)
    d_loc = pid_c * BLOCK_D + d_blk
    d_ok = d_loc < dim_group
    d = pid_g * dim_group + d_loc
    n = gl.arange(0, BLOCK_N, layout=LN)
    n_ok = n < n_state
    nd_ok = n_ok[:, None] & d_ok[None, :]
    A = gl.load(A_ptr + d[None, :] * s_ad + n[:, None] * s_an, mask=nd_ok, other=0.0).to(gl.float32)
    A2 = A * 1.4426950408889634
    Dskip = gl.zeros([BLOCK_D], gl.float32, layout=LD)
    if HAS_D:
        Dskip = gl.load(Dskip_ptr + d, mask=d_ok, other=0.0).to(gl.float32)
    u_row = u_ptr + b64 * s_ub + d * s_ud
    dl_row = dl_ptr + b64 * s_tb + d * s_td
    dy_row = dy_ptr + b64 * s_yb + d * s_yd
    B_row = B_ptr + b64 * s_bb + pid_g * s_bg + n * s_bn
    C_row = C_ptr + b64 * s_cb + pid_g * s_cg + n * s_cn
    out_row = b64 * dim * length + d.to(gl.int64) * length
    bc_row = pid_c.to(gl.int64) * part_stride + ((b64 * groups + pid_g) * n_state + n) * length
    prog = ((pid_b * groups + pid_g) * gl.num_programs(2) + pid_c).to(gl.int64)
    # the forward's checkpoints: a (BLOCK_D, BLOCK_N) block per program and chunk; the workspace:
    # the state at the start of each tile of a chunk, each thread its own elements (no barrier).
    # Scalar bases and one int32 offset tile each: (N, D) tiles of 64-bit pointers would hold
    # two registers per element
    ck_base = ckpt_ptr + prog * (n_chunks * BLOCK_D * BLOCK_N)
    ck_off = d_blk[None, :] * BLOCK_N + n[:, None]
    ws_base = ws_ptr + prog * ((CHUNK // 2) * BLOCK_N * BLOCK_D)
    ws_off = n[:, None] * BLOCK_D + d_blk[None, :]

    g = gl.zeros([BLOCK_N, BLOCK_D], gl.float32, layout=LS)
    a_next = gl.zeros([BLOCK_N, BLOCK_D], gl.float32, layout=LS)
    dA_acc = gl.zeros([BLOCK_N, BLOCK_D], gl.float32, layout=LS)
    dD_acc = gl.zeros([BLOCK_D], gl.float32, layout=LD)
    for i in range(0, n_chunks):
        c0 = (n_chunks - 1 - i) * CHUNK
        n_tiles = gl.cdiv(gl.minimum(length - c0, CHUNK), 2)
        h = gl.load(ck_base + (c0 // CHUNK) * (BLOCK_D * BLOCK_N) + ck_off)
        for k in range(0, n_tiles):
            gl.store(ws_base + k * (BLOCK_N * BLOCK_D) + ws_off, h)
            for s in gl.static_range(2):
                u, dl, dy, Bt, Ct = _step_inputs(u_row, dl_row, B_row, C_row, dy_row, c0 + 2 * k + s, length,
                                                 s_ul, s_tl, s_bl, s_cl, s_yl, d_ok, n_ok)
                h = gl.exp2(dl[None, :] * A2) * h + (dl * u)[None, :] * Bt[:, None]
        for j in range(0, n_tiles):
            k = n_tiles - 1 - j
            t0 = c0 + 2 * k
            h_start = gl.load(ws_base + k * (BLOCK_N * BLOCK_D) + ws_off)
            u0, dl0, dy0, B0, C0 = _step_inputs(u_row, dl_row, B_row, C_row, dy_row, t0, length,
                                                s_ul, s_tl, s_bl, s_cl, s_yl, d_ok, n_ok)
            u1, dl1, dy1, B1, C1 = _step_inputs(u_row, dl_row, B_row, C_row, dy_row, t0 + 1, length,
                                                s_ul, s_tl, s_bl, s_cl, s_yl, d_ok, n_ok)
            dA0 = gl.exp2(dl0[None, :] * A2)
            dA1 = gl.exp2(dl1[None, :] * A2)
            ah0 = dA0 * h_start
            h0 = ah0 + (dl0 * u0)[None, :] * B0[:, None]
            ah1 = dA1 * h0
            h1 = ah1 + (dl1 * u1)[None, :] * B1[:, None]
            g, dA_acc, dD_acc = _bwd_step(g, a_next, h1, ah1, dl1, dl1 * u1, u1, B1, C1, dy1, A, Dskip, dA_acc,
                                          dD_acc, du_ptr, ddl_ptr, dB_ptr, dC_ptr, out_row, bc_row, t0 + 1, length,
                                          d_ok, n_ok, HAS_D)
            g, dA_acc, dD_acc = _bwd_step(g, dA1, h0, ah0, dl0, dl0 * u0, u0, B0, C0, dy0, A, Dskip, dA_acc,
                                          dD_acc, du_ptr, ddl_ptr, dB_ptr, dC_ptr, out_row, bc_row, t0, length,
                                          d_ok, n_ok, HAS_D)
            a_next = dA0
    gl.store(dA_ptr + (b64 * dim + d)[None, :] * n_state + n[:, None], dA_acc, mask=nd_ok)
    gl.store(dD_ptr + b64 * dim + d, dD_acc, mask=d_ok)
