"""The scan's backward in Gluon with its per-step sums reduced by swapping register and lane bits.

`scan_gluon.scan_bwd_kernel` (session 19) sums every step's four products with `gl.sum`: over a
warp's 8 channel lanes for dB and dC (3 shuffles for each of a thread's 4 states) and over its 4
state lanes for du and ddelta (2 shuffles for each of its 2 channels), 32 shuffles a step, each
result left on every lane. Shuffles go through the same shared-memory pipe as the step's reads,
which its profile found waiting. Here a sum over lanes halves the values a thread holds at each
lane bit instead: a register bit of the axis kept is swapped with a lane bit of the axis summed
(one shuffle and two selects per value pair, `gl.convert_layout` between two linear layouts that
differ in those two bits), and the bit now in the registers is added in the thread. A step then
takes 12 shuffles, and its results lie one per lane.

It also writes each step's results where no barrier waits on them: dB and dC straight to global
memory (with PATHS, a row of states contiguous), du's and ddelta's partial sums over each warp's
states to shared buffers of their own per step. Triton puts a barrier between two writes to one
shared allocation whatever their offsets, which session 19's kernel paid twice a pair of steps;
here each sub-chunk is unrolled over steps and every step and pair has its own buffers.

One program: 16 channels of one group of one batch element and all BLOCK_N = 16 x num_warps
states (the launcher pads N to that). Warp w owns states 16w .. 16w+15 of every channel; a thread
4 states of 2 channels (lanes 0-1 the states' high bits, 2-4 the channels'). The passes are
session 19's: per checkpoint chunk (last first) pass A runs the forward from the checkpoint and
keeps each sub-chunk's starting state; pass B takes the sub-chunks last first, runs each forward
again keeping each pair's starting state, and walks it back a pair at a time with three
exponentials per element-step.
"""

from triton.experimental import gluon
from triton.experimental.gluon import language as gl

from .scan_gluon import LOG2E, _barrier, _exp2_ftz, _fwd_step, _keep_sub_chunk_starts, _pick, _stage_backward

NW = gl.constexpr(16)       # states a warp owns
BLOCK_D = gl.constexpr(16)  # channels a program owns


@gluon.constexpr_function
def _bits(warps, regs, lanes, shape):
    """A distributed linear layout of `shape` (axis 0 the warps): `regs` and `lanes` list, per
    register and lane bit, the (axis, step) it moves along; (None, 0) for a lane that repeats."""
    def unit(axis, step):
        vec = [0] * len(shape)
        if axis is not None:
            vec[axis] = step
        return vec
    warp_bases = [unit(0, 1 << i) for i in range(warps.bit_length() - 1)]
    return gl.DistributedLinearLayout(reg_bases=[unit(*r) for r in regs], lane_bases=[unit(*ln) for ln in lanes],
                                      warp_bases=warp_bases, block_bases=[], shape=list(shape))


@gluon.constexpr_function
def _state_layout(warps):
    """The state (W, 16 states, 16 channels): registers states 1, 2 then channel 1; lanes states
    4, 8 then channels 2, 4, 8."""
    return gl.BlockedLayout([1, 4, 2], [1, 4, 8], [warps, 1, 1], [1, 2, 0])


@gluon.constexpr_function
def _per_state(warps):
    """(W, 16 states) of a step's sum over channels: lanes states 4, 8, 1, 2; lane 4 repeats."""
    return _bits(warps, [], [(1, 4), (1, 8), (1, 1), (1, 2), (None, 0)], (warps, 16))


@gluon.constexpr_function
def _per_channel(warps):
    """(W, 16 channels) of a step's sum over a warp's states: lanes channels 1, -, 2, 4, 8."""
    return _bits(warps, [], [(1, 1), (None, 0), (1, 2), (1, 4), (1, 8)], (warps, 16))


@gluon.jit
def _swap_sum(x, SHAPE: gl.constexpr, SRC: gl.constexpr, DST: gl.constexpr):
    """x seen as SHAPE in layout SRC (the same registers), moved to DST (SRC with a register bit
    and a lane bit swapped: shuffles), then summed over its last axis, now in the thread."""
    return gl.sum(gl.convert_layout(gl.convert_layout(gl.reshape(x, SHAPE), SRC), DST), axis=len(SHAPE) - 1)


@gluon.jit
def _sum_channels(x, W: gl.constexpr):
    """Sum over axis 2 of x (W, 16, 16) in _state_layout: (W, 16) in _per_state, 4 shuffles.
    Bits: states n0, n1 in registers, n2, n3 on lanes 0-1; channels c0 in registers, c1-c3 on
    lanes 2-4. Axes below: (W, n3n2, n1, n0, ...)."""
    q = gl.sum(gl.reshape(x, [W, 4, 2, 2, 8, 2]), axis=5)                         # c0, in the thread
    q = _swap_sum(q, [W, 4, 2, 2, 4, 2],                                          # n0 <-> c1 (lane 2)
                  _bits(W, [(3, 1), (2, 1)], [(1, 1), (1, 2), (5, 1), (4, 1), (4, 2)], (W, 4, 2, 2, 4, 2)),
                  _bits(W, [(5, 1), (2, 1)], [(1, 1), (1, 2), (3, 1), (4, 1), (4, 2)], (W, 4, 2, 2, 4, 2)))
    q = _swap_sum(q, [W, 4, 2, 2, 2, 2],                                          # n1 <-> c2 (lane 3)
                  _bits(W, [(2, 1)], [(1, 1), (1, 2), (3, 1), (5, 1), (4, 1)], (W, 4, 2, 2, 2, 2)),
                  _bits(W, [(5, 1)], [(1, 1), (1, 2), (3, 1), (2, 1), (4, 1)], (W, 4, 2, 2, 2, 2)))
    q = gl.sum(q, axis=4)                                                         # c3 (lane 4): a shuffle
    return gl.convert_layout(gl.reshape(q, [W, 16]), _per_state(W))


@gluon.jit
def _sum_states(x, W: gl.constexpr):
    """Sum over axis 1 of x (W, 16, 16) in _state_layout: (W, 16) in _per_channel, 2 shuffles.
    Axes below: (W, n3, n2, c3c2c1, c0)."""
    q = gl.sum(gl.reshape(x, [W, 4, 4, 16]), axis=2)                              # n0, n1, in the thread
    q = _swap_sum(gl.permute(gl.reshape(q, [W, 2, 2, 8, 2]), [0, 1, 3, 4, 2]),   # c0 <-> n2 (lane 0)
                  [W, 2, 8, 2, 2],
                  _bits(W, [(3, 1)], [(4, 1), (1, 1), (2, 1), (2, 2), (2, 4)], (W, 2, 8, 2, 2)),
                  _bits(W, [(4, 1)], [(3, 1), (1, 1), (2, 1), (2, 2), (2, 4)], (W, 2, 8, 2, 2)))
    q = gl.sum(q, axis=1)                                                         # n3 (lane 1): a shuffle
    return gl.convert_layout(gl.reshape(q, [W, 16]), _per_channel(W))


@gluon.jit
def _row(path_row, t, length, PATHS: gl.constexpr):
    """Whether step t is live (< length), and the row it reads and writes."""
    live = t < length
    row = t
    if PATHS:
        row = gl.load(path_row + t, mask=live, other=0)
    return live, row


@gluon.jit
def scan_bwd_kernel(
    u_ptr, dl_ptr, A_ptr, B_ptr, C_ptr, Dskip_ptr, dy_ptr, ckpt_ptr, ws_ptr, path_ptr,
    du_ptr, ddl_ptr, dA_ptr, dB_ptr, dC_ptr, dD_ptr,
    length, n_chunks, groups, dim, dim_group, n_state,
    s_ub, s_ug, s_ul, s_ud, s_tb, s_tg, s_tl, s_td, s_yb, s_yg, s_yl, s_yd, s_ad, s_an,
    s_bb, s_bg, s_bl, s_bn, s_cb, s_cg, s_cl, s_cn, o_b, o_g, o_l, o_d, part_stride, q_b, q_g, q_l, q_n,
    HAS_D: gl.constexpr, CHUNK: gl.constexpr, SUB: gl.constexpr, PATHS: gl.constexpr, ATOMIC: gl.constexpr,
):
    # scan_gluon.scan_bwd_kernel's contract (its comments say what each stride and layout is),
    # but every program holds 16 channels and 16 states a warp. dB and dC: with ATOMIC added
    # into one zeroed (B, G, ...) tensor, else a slice per channel block (`part_stride` apart),
    # summed by the launcher.
    W: gl.constexpr = gl.num_warps()
    BLOCK_N: gl.constexpr = NW * W
    HALF: gl.constexpr = SUB // 2
    L3: gl.constexpr = _state_layout(W)
    LWN: gl.constexpr = gl.SliceLayout(2, L3)                    # (W, NW): a step's B, C
    LWD: gl.constexpr = gl.SliceLayout(1, L3)
    LD: gl.constexpr = gl.SliceLayout(0, LWD)                    # (BLOCK_D,): a step's dl, dl u, dy
    PS: gl.constexpr = _per_state(W)
    # sub-chunk tiles as global memory holds them, lanes along the steps (without PATHS)
    TS: gl.constexpr = SUB if SUB < 32 else 32
    LSD: gl.constexpr = gl.BlockedLayout([1, 1], [TS, 32 // TS], [1, W], [0, 1])
    # and as shared memory holds them, lanes along the rows
    RN: gl.constexpr = BLOCK_N if BLOCK_N < 32 else 32
    LRD: gl.constexpr = gl.BlockedLayout([1, 1], [2, 16], [W, 1], [1, 0])
    LRN: gl.constexpr = gl.BlockedLayout([1, 1], [32 // RN, RN], [W, 1], [1, 0])
    LGD: gl.constexpr = _pick(PATHS, LRD, LSD)
    LGN: gl.constexpr = _pick(PATHS, LRN, LSD)
    # a step's partial sums over each warp's states (W, BLOCK_D), every warp's in each thread
    LSW: gl.constexpr = gl.BlockedLayout([W, 1], [2, 16], [1, W], [1, 0])
    LO: gl.constexpr = gl.SliceLayout(0, LSW)                    # (BLOCK_D,): a step's du, ddelta
    SH2: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [1, 0])
    ROW1: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [0])
    # a pair's starting state: each thread's 4 states contiguous
    SHP: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [1, 2, 0])

    pid_b, pid_g, pid_c = gl.program_id(0), gl.program_id(1), gl.program_id(2)
    b64 = pid_b.to(gl.int64)
    w_i = gl.arange(0, W, layout=gl.SliceLayout(1, LWN))
    nw_i = gl.arange(0, NW, layout=gl.SliceLayout(0, LWN))
    n3 = (w_i[:, None] * NW + nw_i[None, :])[:, :, None]
    d3 = gl.arange(0, BLOCK_D, layout=LD)[None, None, :]
    d_loc3 = pid_c * BLOCK_D + d3
    nd_ok = (n3 < n_state) & (d_loc3 < dim_group)
    dg3 = pid_g * dim_group + d_loc3
    A = gl.load(A_ptr + dg3 * s_ad + n3 * s_an, mask=nd_ok, other=0.0).to(gl.float32)
    d_t = pid_c * BLOCK_D + gl.arange(0, BLOCK_D, layout=gl.SliceLayout(0, LGD))
    d_t_ok = d_t < dim_group
    n_t = gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, LGN))
    n_t_ok = n_t < n_state
    # where a step's dB, dC go (PS) and its du, ddelta (LO)
    n_ps = (gl.arange(0, W, layout=gl.SliceLayout(1, PS))[:, None] * NW
            + gl.arange(0, NW, layout=gl.SliceLayout(0, PS))[None, :])
    n_ps_ok = n_ps < n_state
    d_o = pid_c * BLOCK_D + gl.arange(0, BLOCK_D, layout=LO)
    d_o_ok = d_o < dim_group
    Dskip = gl.zeros([BLOCK_D], gl.float32, layout=LO)
    if HAS_D:
        Dskip = gl.load(Dskip_ptr + pid_g * dim_group + d_o, mask=d_o_ok, other=0.0).to(gl.float32)

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
    ck_base = ckpt_ptr + prog * (n_chunks * BLOCK_D * BLOCK_N)
    nd_off = d3 * BLOCK_N + n3
    ws_base = ws_ptr + prog * ((CHUNK // SUB) * BLOCK_N * BLOCK_D)

    dl_s = gl.allocate_shared_memory(gl.float32, [SUB, BLOCK_D], SH2)
    dlu_s = gl.allocate_shared_memory(gl.float32, [SUB, BLOCK_D], SH2)
    u_s = gl.allocate_shared_memory(gl.float32, [SUB, BLOCK_D], SH2)
    dy_s = gl.allocate_shared_memory(gl.float32, [SUB, BLOCK_D], SH2)
    B_s = gl.allocate_shared_memory(gl.float32, [SUB, BLOCK_N], SH2)
    C_s = gl.allocate_shared_memory(gl.float32, [SUB, BLOCK_N], SH2)
    dl_r = dl_s._reinterpret(gl.float32, [SUB, BLOCK_D], ROW1)
    dlu_r = dlu_s._reinterpret(gl.float32, [SUB, BLOCK_D], ROW1)
    u_r = u_s._reinterpret(gl.float32, [SUB, BLOCK_D], ROW1)
    dy_r = dy_s._reinterpret(gl.float32, [SUB, BLOCK_D], ROW1)
    B_r = B_s._reinterpret(gl.float32, [SUB, W, NW], SH2)
    C_r = C_s._reinterpret(gl.float32, [SUB, W, NW], SH2)
    # a buffer of its own for each step's partial sums and each pair's starting state: Triton
    # separates two writes to one allocation by a barrier
    sA_b = ()
    gB_b = ()
    for _ in gl.static_range(SUB):
        sA_b = sA_b + (gl.allocate_shared_memory(gl.float32, [W, BLOCK_D], SH2), )
        gB_b = gB_b + (gl.allocate_shared_memory(gl.float32, [W, BLOCK_D], SH2), )
    pair_b = ()
    for _ in gl.static_range(HALF):
        pair_b = pair_b + (gl.allocate_shared_memory(gl.float32, [W, NW, BLOCK_D], SHP), )

    g = gl.zeros([W, NW, BLOCK_D], gl.float32, layout=L3)
    a_next = gl.zeros([W, NW, BLOCK_D], gl.float32, layout=L3)
    dA_acc = gl.zeros([W, NW, BLOCK_D], gl.float32, layout=L3)
    dD_acc = gl.zeros([BLOCK_D], gl.float32, layout=LO)
    for i in range(0, n_chunks):
        c = n_chunks - 1 - i
        c0 = c * CHUNK
        n_sub = gl.cdiv(gl.minimum(length - c0, CHUNK), SUB)
        _keep_sub_chunk_starts(ck_base + c * (BLOCK_D * BLOCK_N), ws_base, nd_off, A, dl_s, dlu_s, B_s, dl_r, dlu_r,
                               B_r, dl_base, u_base, B_base, s_td, s_tl, s_ud, s_ul, s_bn, s_bl, d_t, d_t_ok, n_t,
                               n_t_ok, c0, n_sub, length, path_row, PATHS, SUB, BLOCK_N * BLOCK_D, LGD, LGN, LRD,
                               LRN, LD, LWN)
        # pass B: backwards, a sub-chunk at a time (its starting state loaded a sub-chunk ahead)
        h_sub = gl.load(ws_base + (n_sub - 1) * (BLOCK_N * BLOCK_D) + nd_off)
        for si in range(0, n_sub):
            s = n_sub - 1 - si
            t0 = c0 + s * SUB
            _stage_backward(dl_s, dlu_s, B_s, u_s, dy_s, C_s, dl_base, u_base, B_base, dy_base, C_base, s_td, s_tl,
                            s_ud, s_ul, s_bn, s_bl, s_yd, s_yl, s_cn, s_cl, d_t, d_t_ok, n_t, n_t_ok, t0, length,
                            path_row, PATHS, SUB, LGD, LGN, LRD, LRN)
            h = h_sub
            h_sub = gl.load(ws_base + gl.maximum(s - 1, 0) * (BLOCK_N * BLOCK_D) + nd_off)
            _barrier()
            # the sub-chunk's forward again, keeping each pair's starting state
            for kk in gl.static_range(HALF):
                pair_b[kk].store(h)
                for j in gl.static_range(2):
                    h = _fwd_step(h, A, dl_r, dlu_r, B_r, 2 * kk + j, LD, LWN)
            # walk it back a pair at a time, last first: the pair's two steps recomputed from its
            # starting state, exp(dl A) doubling as the adjoint's decay
            for kr in gl.static_range(HALF):
                g, dA_acc, a_next = _pair_back(g, a_next, dA_acc, pair_b[HALF - 1 - kr], A, dl_r, dlu_r, dy_r, B_r, C_r,
                                               sA_b, gB_b, dB_ptr, dC_ptr, bc_base, q_l, q_n, n_ps, n_ps_ok, path_row,
                                               t0, length, 2 * (HALF - 1 - kr), PATHS, ATOMIC, L3, LD, LWN)
            _barrier()
            # du = dl sum g B + D dy and ddelta = sum g A ah + u sum g B, a step's row at a time,
            # its partial sums added over the warps
            for k in gl.static_range(SUB):
                gB = gl.sum(gB_b[k].load(LSW), axis=0)
                sA = gl.sum(sA_b[k].load(LSW), axis=0)
                dl = dl_r.index(k).load(LO)
                uk = u_r.index(k).load(LO)
                du = gB * dl
                if HAS_D:
                    dyk = dy_r.index(k).load(LO)
                    du += Dskip * dyk
                    dD_acc += dyk * uk
                live, row = _row(path_row, t0 + k, length, PATHS)
                out = out_base + row.to(gl.int64) * o_l + d_o * o_d
                gl.store(du_ptr + out, du, mask=d_o_ok & live)
                gl.store(ddl_ptr + out, sA + gB * uk, mask=d_o_ok & live)
            _barrier()
    gl.store(dA_ptr + (b64 * dim + dg3) * n_state + n3, dA_acc, mask=nd_ok)
    if HAS_D:
        gl.store(dD_ptr + b64 * dim + pid_g * dim_group + d_o, dD_acc, mask=d_o_ok)


@gluon.jit
def _pair_back(g, a_next, dA_acc, pair_buf, A, dl_r, dlu_r, dy_r, B_r, C_r, sA_b, gB_b, dB_ptr, dC_ptr, bc_base, q_l,
               q_n, n_ps, n_ps_ok, path_row, t0, length, K0: gl.constexpr, PATHS: gl.constexpr, ATOMIC: gl.constexpr,
               L3: gl.constexpr, LD: gl.constexpr, LWN: gl.constexpr):
    """Steps K0 + 1 and K0 of the staged sub-chunk, backwards, recomputed from the pair's starting
    state: the pair's exp(dl A) doubles as the adjoint's decay. Returns g, dA and step K0's decay."""
    W: gl.constexpr = gl.num_warps()
    h_start = pair_buf.load(L3)
    dl0 = dl_r.index(K0).load(LD)
    dl1 = dl_r.index(K0 + 1).load(LD)
    dlu0 = dlu_r.index(K0).load(LD)
    dlu1 = dlu_r.index(K0 + 1).load(LD)
    B0 = B_r.index(K0).load(LWN)
    B1 = B_r.index(K0 + 1).load(LWN)
    a0 = _exp2_ftz((dl0 * LOG2E)[None, None, :] * A)
    ah0 = a0 * h_start
    h0 = ah0 + dlu0[None, None, :] * B0[:, :, None]
    a1 = _exp2_ftz((dl1 * LOG2E)[None, None, :] * A)
    ah1 = a1 * h0
    h1 = ah1 + dlu1[None, None, :] * B1[:, :, None]
    g, dA_acc = _bwd_step(g, a_next, h1, ah1, dl1, dlu1, dy_r.index(K0 + 1).load(LD), B1, C_r.index(K0 + 1).load(LWN),
                          A, dA_acc, sA_b[K0 + 1], gB_b[K0 + 1], dB_ptr, dC_ptr, bc_base, q_l, q_n, n_ps, n_ps_ok,
                          path_row, t0 + K0 + 1, length, PATHS, ATOMIC, W)
    g, dA_acc = _bwd_step(g, a1, h0, ah0, dl0, dlu0, dy_r.index(K0).load(LD), B0, C_r.index(K0).load(LWN),
                          A, dA_acc, sA_b[K0], gB_b[K0], dB_ptr, dC_ptr, bc_base, q_l, q_n, n_ps, n_ps_ok,
                          path_row, t0 + K0, length, PATHS, ATOMIC, W)
    return g, dA_acc, a0


@gluon.jit
def _bwd_step(g, a_next, h, ah, dl, dlu, dy, Bk, Ck, A, dA_acc, sA_buf, gB_buf, dB_ptr, dC_ptr, bc_base, q_l, q_n,
              n_ps, n_ps_ok, path_row, t, length, PATHS: gl.constexpr, ATOMIC: gl.constexpr, W: gl.constexpr):
    """One step of the adjoint, last step first: g_t = exp(dl_{t+1} A) g_{t+1} + C_t dy_t, with h
    the state after step t and ah = exp(dl_t A) h_{t-1}. dB_t = sum g dl u and dC_t = sum h dy over
    the program's channels go to global memory; the warp's sums over its states, sum g A ah and
    sum g B, to the step's shared buffers; dA sums over steps in registers."""
    dl3 = dl[None, None, :]
    dy3 = dy[None, None, :]
    g = a_next * g + Ck[:, :, None] * dy3
    live, row = _row(path_row, t, length, PATHS)
    bc = bc_base + row.to(gl.int64) * q_l + n_ps * q_n
    ok = n_ps_ok & live
    dB = _sum_channels(g * dlu[None, None, :], W)
    dC = _sum_channels(h * dy3, W)
    if ATOMIC:
        gl.atomic_add(dB_ptr + bc, dB, mask=ok, sem="relaxed")
        gl.atomic_add(dC_ptr + bc, dC, mask=ok, sem="relaxed")
    else:
        gl.store(dB_ptr + bc, dB, mask=ok)
        gl.store(dC_ptr + bc, dC, mask=ok)
    gah = g * ah
    dA_acc += gah * dl3
    sA_buf.store(_sum_states(gah * A, W))
    gB_buf.store(_sum_states(g * Bk[:, :, None], W))
    return g, dA_acc
