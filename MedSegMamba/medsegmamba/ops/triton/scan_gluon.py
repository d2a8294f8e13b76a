"""SS3D's scan walk, and the scan's backward, written in Gluon, Triton's language with explicit layouts.

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
chunk's loads are issued before this chunk's steps run, so their latency hides behind them. With
STORE_CKPT (training, where its `auto` takes it or `$MEDSEGMAMBA_TRITON_WALK=gluon`)
it also leaves the backward's checkpoints.

`scan_bwd_kernel` is the scan's backward (selective_scan.py's "gluon", taken by "auto" on a GPU),
for the (B, D, L) layouts and, with PATHS, for SS3D's walk under autograd; its comments say how it
runs. On an H100 one paper-size scan's forward + backward takes 3.39 ms with it, 7.07 ms with the
chunked Triton backward (benchmarks/results/2026-12-07-h100-s19/). Since session 27 it no longer
recomputes the forward steps whose states nothing reads (2.6 exponentials an element-step instead of
3): its outputs are the same to the bit under the emulator, and the change is not yet timed.

Gluon has no interpreter: this compiles anywhere (tests build it for sm_90 on the CPU machine) but
runs only on a CUDA GPU, where Testing/ops/test_scan_along_paths.py (`pytest -m gpu`) checks it
against a float64 loop and benchmarks/scan_walk_gpu.py times it against the chunked kernel. On the
CPU, gluon_emulator.py runs both kernels' arithmetic and addressing, though not their layouts or
barriers (Testing/ops/test_gluon_emulated.py, against float64 references).
"""

from triton.experimental import gluon
from triton.experimental.gluon import language as gl

# Gluon kernels call @triton.jit helpers on their tensors as they are
from .scan_kernels import _softplus

LOG2E = gl.constexpr(1.4426950408889634)  # exp(x) = 2^(x log2(e)): the kernels' exponentials are MUFU.EX2

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
def _store_ckpt(ckpt_ptr, h, t0, pid_b, pid_g, d_s, n_s, d_ok_s, dim_group, length, CHUNK: gl.constexpr,
                CKPT_BLOCK_D: gl.constexpr, BLOCK_N: gl.constexpr):
    """The state h (BLOCK_N, channels d_s) at step t0, a chunk's start, where the backward reads it;
    each thread's states of a channel are contiguous there, so they go out as vectors."""
    n_blocks = (dim_group + CKPT_BLOCK_D - 1) // CKPT_BLOCK_D
    ck_prog = (pid_b * gl.num_programs(1) + pid_g) * n_blocks + d_s // CKPT_BLOCK_D
    chunks = (length + CHUNK - 1) // CHUNK
    col = (ck_prog.to(gl.int64) * chunks + t0 // CHUNK) * (CKPT_BLOCK_D * BLOCK_N) + (d_s % CKPT_BLOCK_D) * BLOCK_N
    gl.store(ckpt_ptr + col[None, :] + n_s[:, None], h, mask=d_ok_s[None, :])


@gluon.jit
def scan_paths_fwd_kernel(
    u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, Dskip_ptr, bias_ptr, y_ptr, path_ptr, ckpt_ptr,
    length, dim_group, n_state,
    s_ub, s_ul, s_tb, s_tg, s_tl, s_ad, s_an,
    s_bb, s_bg, s_bl, s_bn, s_cb, s_cg, s_cl, s_cn, s_yb, s_yl, s_yg,
    HAS_D: gl.constexpr, HAS_BIAS: gl.constexpr, SOFTPLUS: gl.constexpr,
    SPT_N: gl.constexpr, TPW_N: gl.constexpr, SPT_D: gl.constexpr, T: gl.constexpr,
    LANES_D: gl.constexpr, LANES_N: gl.constexpr,
    STORE_CKPT: gl.constexpr = False, CHUNK: gl.constexpr = 64, CKPT_BLOCK_D: gl.constexpr = 16,
):
    # One program: SPT_D * (32 // TPW_N) * num_warps channels of one group of one batch element,
    # all BLOCK_N = SPT_N * TPW_N states. u is (Bt, L, Dg), delta (Bt, G, L, Dg), B and C
    # (Bt, G, L, N), y (Bt, L, G, Dg): channels contiguous (stride 1) in u, delta and y.
    # Step t of group g reads and writes row path[g, t].
    # With STORE_CKPT (training) the state at the start of every CHUNK steps goes to ckpt_ptr where
    # the backward kernels read it, as _scan_fwd_chunked_kernel leaves it: per block of CKPT_BLOCK_D
    # channels of the backward's grid, (chunks, CKPT_BLOCK_D, BLOCK_N). T divides CHUNK.
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
    A2 = A.to(gl.float32) * LOG2E
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
        if STORE_CKPT:
            if t0 % CHUNK == 0:
                _store_ckpt(ckpt_ptr, h, t0, pid_b, pid_g, d_s, n_s, d_ok_s, dim_group, length, CHUNK, CKPT_BLOCK_D,
                            BLOCK_N)
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


@gluon.constexpr_function
def _pick(flag, if_true, if_false):
    """A compile-time choice between two constants (layouts), which Gluon's `a if c else b` does not make."""
    return if_true if flag else if_false


@gluon.jit
def _live(t0, length, SUB: gl.constexpr, LAY: gl.constexpr):
    """Steps t0 .. t0+SUB-1 along axis 0 of LAY, and whether each is live (< length)."""
    t = t0 + gl.arange(0, SUB, layout=gl.SliceLayout(1, LAY))
    return t, t < length


@gluon.jit
def _steps(t0, length, path_row, PATHS: gl.constexpr, SUB: gl.constexpr, LAY: gl.constexpr):
    """Steps t0 .. t0+SUB-1 along axis 0 of LAY: whether each is live (< length) and the row it
    reads and writes: the step itself, or with PATHS the position its group's path visits."""
    t, live = _live(t0, length, SUB, LAY)
    if PATHS:
        t = gl.load(path_row + t, mask=live, other=0)
    return live, t


@gluon.jit
def _tile(base, s_col, s_row, cols, cols_ok, t0, length, path_row, PATHS: gl.constexpr, SUB: gl.constexpr,
          LAY: gl.constexpr):
    """The (SUB, cols) float32 tile of steps t0 .. t0+SUB-1 of a tensor whose columns (channels or
    states) are `s_col` apart and rows (steps, or path positions) `s_row`; 0 past the end."""
    live, rows = _steps(t0, length, path_row, PATHS, SUB, LAY)
    ok = live[:, None] & cols_ok[None, :]
    return gl.load(base + rows[:, None] * s_row + cols[None, :] * s_col, mask=ok, other=0.0).to(gl.float32)


@gluon.jit
def _fwd_step(h, A, dl_r, dlu_r, B_r, k, LD: gl.constexpr, LWN: gl.constexpr):
    """Step k of a staged sub-chunk: h = exp(dl A) h + dl u B, exp(dl A) as 2^(dl log2(e) A)."""
    dlk = dl_r.index(k).load(LD) * LOG2E
    dluk = dlu_r.index(k).load(LD)
    return _exp2_ftz(dlk[None, None, :] * A) * h + dluk[None, None, :] * B_r.index(k).load(LWN)[:, :, None]


@gluon.jit
def _stage_forward(dl_s, dlu_s, B_s, dl_base, u_base, B_base, s_td, s_tl, s_ud, s_ul, s_bn, s_bl, d_t, d_t_ok,
                   n_t, n_t_ok, t0, length, path_row, bias, PATHS: gl.constexpr, SUB: gl.constexpr, LGD: gl.constexpr,
                   LGN: gl.constexpr, LRD: gl.constexpr, LRN: gl.constexpr, HAS_BIAS: gl.constexpr,
                   SOFTPLUS: gl.constexpr):
    """Stages what a forward step reads of the sub-chunk at t0 (dl, dl u, B) as rows in shared
    memory; returns its u tile and, with SOFTPLUS, d dl / dx (sigmoid(x), x = delta + bias) in
    global memory's layout."""
    x = _tile(dl_base, s_td, s_tl, d_t, d_t_ok, t0, length, path_row, PATHS, SUB, LGD)
    if HAS_BIAS:
        x = x + bias[None, :]
    dl = x
    sig = x
    if SOFTPLUS:
        dl, sig = _softplus_sigmoid(x)
    if HAS_BIAS or SOFTPLUS:
        # steps past the end: dl 0, so exp(0 A) = 1 and dl u B = 0 leave the state as it is
        _, live = _live(t0, length, SUB, LGD)
        dl = gl.where(live[:, None], dl, 0.0)
    u = _tile(u_base, s_ud, s_ul, d_t, d_t_ok, t0, length, path_row, PATHS, SUB, LGD)
    dl_s.store(gl.convert_layout(dl, LRD))
    dlu_s.store(gl.convert_layout(dl * u, LRD))
    B_s.store(gl.convert_layout(_tile(B_base, s_bn, s_bl, n_t, n_t_ok, t0, length, path_row, PATHS, SUB, LGN), LRN))
    return u, sig


@gluon.jit
def _softplus_sigmoid(x):
    """softplus(x) as scan_kernels._softplus computes it (torch's, threshold 20) and its derivative
    sigmoid(x) = e^x / (1 + e^x), from the same exponential."""
    z = gl.exp(gl.minimum(x, 20.0))
    w = 1.0 + z
    lp = gl.where(w == 1.0, z, gl.log(w) * (z / (w - 1.0)))
    return gl.where(x > 20.0, x, lp), z / w


@gluon.jit
def _bwd_step(g, a_next, h, ah, dl, dlu, dy, Bk, Ck, A, dA_acc, dB_r, dC_r, sA_r, gB_r, k):
    """One step of the adjoint, last step first: g_t = exp(dl_{t+1} A) g_{t+1} + C_t dy_t, with h
    the state after step t and ah = exp(dl_t A) h_{t-1}. Its sums go to shared memory row k: over
    the program's channels dB_t = sum g dl u and dC_t = sum h dy (whole, since a warp holds every
    channel of its states); over the warp's states sum g A ah and sum g B (a row per warp, added
    over warps once per sub-chunk). dA sums over steps in registers."""
    dl3 = dl[None, None, :]
    dy3 = dy[None, None, :]
    g = a_next * g + Ck[:, :, None] * dy3
    dB_r.index(k).store(gl.sum(g * dlu[None, None, :], axis=2))
    dC_r.index(k).store(gl.sum(h * dy3, axis=2))
    gah = g * ah
    dA_acc += gah * dl3
    sA_r.index(k).store(gl.sum(gah * A, axis=1))
    gB_r.index(k).store(gl.sum(g * Bk[:, :, None], axis=1))
    return g, dA_acc


@gluon.jit
def scan_bwd_kernel(
    u_ptr, dl_ptr, A_ptr, B_ptr, C_ptr, Dskip_ptr, dy_ptr, ckpt_ptr, ws_ptr, path_ptr, bias_ptr,
    du_ptr, ddl_ptr, dA_ptr, dB_ptr, dC_ptr, dD_ptr, dbias_ptr,
    length, n_chunks, groups, dim, dim_group, n_state,
    s_ub, s_ug, s_ul, s_ud, s_tb, s_tg, s_tl, s_td, s_yb, s_yg, s_yl, s_yd, s_ad, s_an,
    s_bb, s_bg, s_bl, s_bn, s_cb, s_cg, s_cl, s_cn, o_b, o_g, o_l, o_d, part_stride, q_b, q_g, q_l, q_n,
    HAS_D: gl.constexpr, CHUNK: gl.constexpr, SPT_N: gl.constexpr, TPW_N: gl.constexpr, SPT_D: gl.constexpr,
    SUB: gl.constexpr, PATHS: gl.constexpr, ATOMIC: gl.constexpr = False, HAS_BIAS: gl.constexpr = False,
    SOFTPLUS: gl.constexpr = False,
):
    # The backward of one scan in _scan_bwd_chunked_kernel's contract: delta's bias and softplus
    # applied outside (dl given), the forward's checkpoints every CHUNK steps. With HAS_BIAS or
    # SOFTPLUS (the walked route run eagerly: `$MEDSEGMAMBA_TRITON_BWD_DELTA`) dl_ptr holds delta
    # itself: its bias and softplus are applied as a sub-chunk is staged, once per (step, channel),
    # outside the loops over states, ddl_ptr receives ddelta (ddl sigmoid(x), x = delta + bias),
    # and dbias_ptr (B, D) its sums over the steps. Every tensor is
    # addressed as (batch, group, row, column) with a stride each (o_* for du and ddelta, q_* for
    # dB and dC, whose channel blocks' slices lie `part_stride` apart). Without PATHS: u, dl, dy
    # (B, D, L), B and C (B, G, N, L), du and ddelta (B, D, L), dB and dC (B, G, N, L), rows the
    # steps. With PATHS (SS3D's walk under autograd, selective_scan_paths_triton_grad): step t of
    # group g is row path[g, t] of u (B, L, Dg), shared by the groups (s_ug 0), dl (B, G, L, Dg),
    # dy (B, L, G, Dg), B and C (B, G, L, N), du per group and ddelta (B, G, L, Dg), dB and dC
    # (B, G, L, N): columns contiguous, so the tiles put lanes along the columns instead of the steps.
    # One program: BLOCK_D channels of one group of one batch element, all BLOCK_N states. Its
    # state (W, NW, BLOCK_D): warp w owns states w*NW .. w*NW+NW-1 of every channel, each thread
    # SPT_N states of SPT_D channels, and walks the steps one at a time. So the sums over channels
    # (dB, dC) stay in a warp, and those over states (for du, ddelta) are summed over warps once
    # per sub-chunk through shared memory, not per step.
    # Per checkpoint chunk (last first): pass A runs the forward from the chunk's checkpoint and
    # keeps the state at the start of each sub-chunk of SUB steps (the workspace: global, 16 MB
    # at the paper's size and batch 1, each thread its own elements), all but the last sub-chunk's
    # steps. Pass B takes the sub-chunks last first: it runs the sub-chunk's forward again from its
    # starting state, all but the last pair of steps, keeping the state at the start of each pair
    # in shared memory, then walks the sub-chunk backwards a pair at a time,
    # recomputing the pair's two steps, whose exp(dl A) doubles as the adjoint's decay: 2.6
    # exponentials per element-step at CHUNK 64 and SUB 8 (7/8 + 3/4 + 1), and no global traffic
    # for the pairs' states (session 19's first two versions kept them in a global workspace too
    # big for L2: 5.2 GB of DRAM traffic a paper-size call). Inputs are read a sub-chunk at a time
    # by coalesced loads (steps contiguous) into shared memory; pass B stages its per-step sums
    # there too and writes du, ddelta, dB, dC a sub-chunk at a time, steps contiguous.
    # Shared rows are written and read with lanes along the row (channels or states), free of
    # bank conflicts; convert_layout turns tiles between those lanes and the global memory's
    # (steps) through Triton's conflict-free scratch.
    # dB, dC: a slice per channel block (`part_stride` apart), summed by the launcher, or with
    # ATOMIC added into one zeroed tensor; dA (B, D, N), dD (B, D).
    W: gl.constexpr = gl.num_warps()
    TPW_D: gl.constexpr = 32 // TPW_N
    NW: gl.constexpr = SPT_N * TPW_N
    BLOCK_N: gl.constexpr = NW * W
    BLOCK_D: gl.constexpr = SPT_D * TPW_D
    HALF: gl.constexpr = SUB // 2
    L3: gl.constexpr = gl.BlockedLayout([1, SPT_N, SPT_D], [1, TPW_N, TPW_D], [W, 1, 1], [1, 2, 0])
    LWN: gl.constexpr = gl.SliceLayout(2, L3)                    # (W, NW): a step's B, C, dB, dC
    LWD: gl.constexpr = gl.SliceLayout(1, L3)                    # (W, BLOCK_D): a warp's sums over its states
    LD: gl.constexpr = gl.SliceLayout(0, LWD)                    # (BLOCK_D,): a step's dl, dl u, dy
    # sub-chunk tiles as global memory holds them, lanes along the steps: (SUB, BLOCK_D), (SUB, BLOCK_N)
    TS: gl.constexpr = SUB if SUB < 32 else 32
    LSD: gl.constexpr = gl.BlockedLayout([1, 1], [TS, 32 // TS], [1, W], [0, 1])
    LSN: gl.constexpr = gl.BlockedLayout([1, 1], [TS, 32 // TS], [1, W], [0, 1])
    # and as shared memory holds them, lanes along the rows: (SUB, W, BLOCK_D) with the warps'
    # rows in each thread (summed there), its (SUB, BLOCK_D) slice, and (SUB, BLOCK_N)
    RD: gl.constexpr = BLOCK_D if BLOCK_D < 32 else 32
    RN: gl.constexpr = BLOCK_N if BLOCK_N < 32 else 32
    LRWD: gl.constexpr = gl.BlockedLayout([1, W, 1], [32 // RD, 1, RD], [W, 1, 1], [2, 1, 0])
    LRD: gl.constexpr = gl.SliceLayout(1, LRWD)
    LRN: gl.constexpr = gl.BlockedLayout([1, 1], [32 // RN, RN], [W, 1], [1, 0])
    # global memory's tiles: columns contiguous with PATHS, steps without
    LGD: gl.constexpr = _pick(PATHS, LRD, LSD)
    LGN: gl.constexpr = _pick(PATHS, LRN, LSN)
    # shared buffers, row-major and unswizzled, written whole and read a step's row at a time
    # through the same bytes seen with a layout of one rank less (indexing the leading axis)
    SH2: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [1, 0])
    SH3: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [2, 1, 0])
    ROW1: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [0])

    pid_b, pid_g, pid_c = gl.program_id(0), gl.program_id(1), gl.program_id(2)
    b64 = pid_b.to(gl.int64)
    # the state's indices (W, NW, BLOCK_D)
    w_i = gl.arange(0, W, layout=gl.SliceLayout(1, LWN))
    nw_i = gl.arange(0, NW, layout=gl.SliceLayout(0, LWN))
    n_wn = w_i[:, None] * NW + nw_i[None, :]                     # (W, NW)
    d_i = gl.arange(0, BLOCK_D, layout=LD)
    n3 = n_wn[:, :, None]
    d3 = d_i[None, None, :]
    d_loc3 = pid_c * BLOCK_D + d3
    nd_ok = (n3 < n_state) & (d_loc3 < dim_group)
    dg3 = pid_g * dim_group + d_loc3
    # exp(dl A) = 2^(dl log2(e) A): dl is scaled per step, A stays as it is (the gradients need it)
    A = gl.load(A_ptr + dg3 * s_ad + n3 * s_an, mask=nd_ok, other=0.0).to(gl.float32)
    # the sub-chunk tiles' indices, in global memory's lanes and in shared memory's
    d_t = pid_c * BLOCK_D + gl.arange(0, BLOCK_D, layout=gl.SliceLayout(0, LGD))
    d_t_ok = d_t < dim_group
    n_t = gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, LGN))
    n_t_ok = n_t < n_state
    d_r = pid_c * BLOCK_D + gl.arange(0, BLOCK_D, layout=gl.SliceLayout(0, LRD))
    d_r_ok = d_r < dim_group
    Dskip = gl.zeros([BLOCK_D], gl.float32, layout=gl.SliceLayout(0, LRD))
    if HAS_D:
        Dskip = gl.load(Dskip_ptr + pid_g * dim_group + d_r, mask=d_r_ok, other=0.0).to(gl.float32)
    bias = gl.zeros([BLOCK_D], gl.float32, layout=gl.SliceLayout(0, LGD))
    if HAS_BIAS:
        bias = gl.load(bias_ptr + pid_g * dim_group + d_t, mask=d_t_ok, other=0.0).to(gl.float32)
    # dbias's addends, summed over the sub-chunk's rows once at the end (a sum across warps each
    # sub-chunk would cost barriers)
    dbias_acc = gl.zeros([SUB, BLOCK_D], gl.float32, layout=LGD)

    u_base = u_ptr + b64 * s_ub + pid_g * s_ug
    dl_base = dl_ptr + b64 * s_tb + pid_g * s_tg
    dy_base = dy_ptr + b64 * s_yb + pid_g * s_yg
    B_base = B_ptr + b64 * s_bb + pid_g * s_bg
    C_base = C_ptr + b64 * s_cb + pid_g * s_cg
    out_base = b64 * o_b + pid_g * o_g
    bc_base = b64 * q_b + pid_g * q_g
    if not ATOMIC:
        bc_base += pid_c.to(gl.int64) * part_stride
    path_row = path_ptr + pid_g * length
    prog = ((pid_b * groups + pid_g) * gl.num_programs(2) + pid_c).to(gl.int64)
    # checkpoints: a (BLOCK_D, BLOCK_N) block per program and chunk, states contiguous; the workspace
    # the same per sub-chunk of a chunk. Each thread's SPT_N states are contiguous in both.
    ck_base = ckpt_ptr + prog * (n_chunks * BLOCK_D * BLOCK_N)
    nd_off = d3 * BLOCK_N + n3
    ws_base = ws_ptr + prog * ((CHUNK // SUB) * BLOCK_N * BLOCK_D)

    dl_s = gl.allocate_shared_memory(gl.float32, [SUB, BLOCK_D], SH2)
    dlu_s = gl.allocate_shared_memory(gl.float32, [SUB, BLOCK_D], SH2)
    u_s = gl.allocate_shared_memory(gl.float32, [SUB, BLOCK_D], SH2)
    dy_s = gl.allocate_shared_memory(gl.float32, [SUB, BLOCK_D], SH2)
    B_s = gl.allocate_shared_memory(gl.float32, [SUB, BLOCK_N], SH2)
    C_s = gl.allocate_shared_memory(gl.float32, [SUB, BLOCK_N], SH2)
    dB_s = gl.allocate_shared_memory(gl.float32, [SUB, BLOCK_N], SH2)
    dC_s = gl.allocate_shared_memory(gl.float32, [SUB, BLOCK_N], SH2)
    sA_s = gl.allocate_shared_memory(gl.float32, [SUB, W, BLOCK_D], SH3)
    gB_s = gl.allocate_shared_memory(gl.float32, [SUB, W, BLOCK_D], SH3)
    pair_s = gl.allocate_shared_memory(gl.float32, [HALF, BLOCK_N * BLOCK_D], SH2)
    dl_r = dl_s._reinterpret(gl.float32, [SUB, BLOCK_D], ROW1)
    dlu_r = dlu_s._reinterpret(gl.float32, [SUB, BLOCK_D], ROW1)
    dy_r = dy_s._reinterpret(gl.float32, [SUB, BLOCK_D], ROW1)
    B_r = B_s._reinterpret(gl.float32, [SUB, W, NW], SH2)
    C_r = C_s._reinterpret(gl.float32, [SUB, W, NW], SH2)
    dB_r = dB_s._reinterpret(gl.float32, [SUB, W, NW], SH2)
    dC_r = dC_s._reinterpret(gl.float32, [SUB, W, NW], SH2)
    sA_r = sA_s._reinterpret(gl.float32, [SUB, W, BLOCK_D], SH2)
    gB_r = gB_s._reinterpret(gl.float32, [SUB, W, BLOCK_D], SH2)
    # a pair's starting state (W, NW, BLOCK_D) as the workspace holds it: states, channels, warps
    pair_r = pair_s._reinterpret(gl.float32, [HALF, W, NW, BLOCK_D], gl.SwizzledSharedLayout(1, 1, 1, [1, 2, 0]))

    g = gl.zeros([W, NW, BLOCK_D], gl.float32, layout=L3)
    a_next = gl.zeros([W, NW, BLOCK_D], gl.float32, layout=L3)
    dA_acc = gl.zeros([W, NW, BLOCK_D], gl.float32, layout=L3)
    dD_acc = gl.zeros([BLOCK_D], gl.float32, layout=gl.SliceLayout(0, LRD))
    for i in range(0, n_chunks):
        c = n_chunks - 1 - i
        c0 = c * CHUNK
        n_sub = gl.cdiv(gl.minimum(length - c0, CHUNK), SUB)
        # pass A: the forward from the checkpoint, keeping each sub-chunk's starting state; the last
        # sub-chunk's steps are not run (no state after it is needed), its starting state stays in h
        h = gl.load(ck_base + c * (BLOCK_D * BLOCK_N) + nd_off)
        for s in range(0, n_sub - 1):
            _stage_forward(dl_s, dlu_s, B_s, dl_base, u_base, B_base, s_td, s_tl, s_ud, s_ul, s_bn, s_bl, d_t, d_t_ok,
                           n_t, n_t_ok, c0 + s * SUB, length, path_row, bias, PATHS, SUB, LGD, LGN, LRD, LRN,
                           HAS_BIAS, SOFTPLUS)
            gl.store(ws_base + s * (BLOCK_N * BLOCK_D) + nd_off, h)
            _barrier()
            for k in range(0, SUB):
                h = _fwd_step(h, A, dl_r, dlu_r, B_r, k, LD, LWN)
            _barrier()
        # pass B: backwards, a sub-chunk at a time (its starting state loaded a sub-chunk ahead)
        h_sub = h
        for si in range(0, n_sub):
            s = n_sub - 1 - si
            t0 = c0 + s * SUB
            u, sig = _stage_forward(dl_s, dlu_s, B_s, dl_base, u_base, B_base, s_td, s_tl, s_ud, s_ul, s_bn, s_bl, d_t,
                                  d_t_ok, n_t, n_t_ok, t0, length, path_row, bias, PATHS, SUB, LGD, LGN, LRD, LRN,
                                  HAS_BIAS, SOFTPLUS)
            u_s.store(gl.convert_layout(u, LRD))
            dy = _tile(dy_base, s_yd, s_yl, d_t, d_t_ok, t0, length, path_row, PATHS, SUB, LGD)
            dy_s.store(gl.convert_layout(dy, LRD))
            C_s.store(gl.convert_layout(_tile(C_base, s_cn, s_cl, n_t, n_t_ok, t0, length, path_row, PATHS, SUB, LGN),
                                        LRN))
            h = h_sub
            h_sub = gl.load(ws_base + gl.maximum(s - 1, 0) * (BLOCK_N * BLOCK_D) + nd_off)
            _barrier()
            # the sub-chunk's forward again, keeping each pair's starting state in shared memory
            # (each thread its own elements); the last pair's steps are recomputed below
            for kk in range(0, HALF - 1):
                pair_r.index(kk).store(h)
                for j in gl.static_range(2):
                    h = _fwd_step(h, A, dl_r, dlu_r, B_r, 2 * kk + j, LD, LWN)
            pair_r.index(HALF - 1).store(h)
            for kr in range(0, HALF):
                kk = HALF - 1 - kr
                k0 = 2 * kk
                k1 = 2 * kk + 1
                h_start = pair_r.index(kk).load(L3)
                dl0 = dl_r.index(k0).load(LD)
                dl1 = dl_r.index(k1).load(LD)
                dlu0 = dlu_r.index(k0).load(LD)
                dlu1 = dlu_r.index(k1).load(LD)
                B0 = B_r.index(k0).load(LWN)
                B1 = B_r.index(k1).load(LWN)
                a0 = _exp2_ftz((dl0 * LOG2E)[None, None, :] * A)
                ah0 = a0 * h_start
                h0 = ah0 + dlu0[None, None, :] * B0[:, :, None]
                a1 = _exp2_ftz((dl1 * LOG2E)[None, None, :] * A)
                ah1 = a1 * h0
                h1 = ah1 + dlu1[None, None, :] * B1[:, :, None]
                g, dA_acc = _bwd_step(g, a_next, h1, ah1, dl1, dlu1, dy_r.index(k1).load(LD), B1,
                                      C_r.index(k1).load(LWN), A, dA_acc, dB_r, dC_r, sA_r, gB_r, k1)
                g, dA_acc = _bwd_step(g, a1, h0, ah0, dl0, dlu0, dy_r.index(k0).load(LD), B0,
                                      C_r.index(k0).load(LWN), A, dA_acc, dB_r, dC_r, sA_r, gB_r, k0)
                a_next = a0
            _barrier()
            # the sub-chunk's outputs: du = dl sum g B + D dy, ddelta = sum g A ah + u sum g B,
            # dB and dC, computed with lanes along the rows and stored with lanes along the steps
            gB = gl.sum(gB_s.load(LRWD), axis=1)
            sA = gl.sum(sA_s.load(LRWD), axis=1)
            dl = dl_s.load(LRD)
            u = u_s.load(LRD)
            du = gB * dl
            if HAS_D:
                dy = dy_s.load(LRD)
                du += Dskip[None, :] * dy
                dD_acc += gl.sum(dy * u, axis=0)
            live, rows = _steps(t0, length, path_row, PATHS, SUB, LGD)
            ok = live[:, None] & d_t_ok[None, :]
            out = out_base + rows[:, None].to(gl.int64) * o_l + d_t[None, :] * o_d
            gl.store(du_ptr + out, gl.convert_layout(du, LGD), mask=ok)
            ddl = gl.convert_layout(sA + gB * u, LGD)
            if SOFTPLUS:
                ddl = ddl * sig
            gl.store(ddl_ptr + out, ddl, mask=ok)
            if HAS_BIAS:
                dbias_acc += gl.where(ok, ddl, 0.0)
            live, rows = _steps(t0, length, path_row, PATHS, SUB, LGN)
            ok_n = live[:, None] & n_t_ok[None, :]
            bc = bc_base + rows[:, None].to(gl.int64) * q_l + n_t[None, :] * q_n
            dB = gl.convert_layout(dB_s.load(LRN), LGN)
            dC = gl.convert_layout(dC_s.load(LRN), LGN)
            if ATOMIC:
                gl.atomic_add(dB_ptr + bc, dB, mask=ok_n, sem="relaxed")
                gl.atomic_add(dC_ptr + bc, dC, mask=ok_n, sem="relaxed")
            else:
                gl.store(dB_ptr + bc, dB, mask=ok_n)
                gl.store(dC_ptr + bc, dC, mask=ok_n)
            _barrier()
    gl.store(dA_ptr + (b64 * dim + dg3) * n_state + n3, dA_acc, mask=nd_ok)
    if HAS_D:
        gl.store(dD_ptr + b64 * dim + pid_g * dim_group + d_r, dD_acc, mask=d_r_ok)
    if HAS_BIAS:
        gl.store(dbias_ptr + b64 * dim + pid_g * dim_group + d_t, gl.sum(dbias_acc, axis=0), mask=d_t_ok)
