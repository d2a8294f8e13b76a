"""The @triton.jit kernels of the selective scan: forward ("seq", "chunked") and backward ("seq",
"chunked"). What each does and why is in `selective_scan.py`, which launches them and holds the
autograd.Function; this file is only the device code.

Every kernel takes the checkpoint interval CHUNK as a constexpr parameter, not from a global, so
the launchers (and the tests, which shrink it) decide it in one place.
"""

import triton
import triton.language as tl

@triton.jit
def _softplus(x):
    # torch's softplus (threshold 20) with an accurate log1p(exp(x)) for very negative x
    z = tl.exp(tl.minimum(x, 20.0))
    w = 1.0 + z
    lp = tl.where(w == 1.0, z, tl.log(w) * (z / (w - 1.0)))
    return tl.where(x > 20.0, x, lp)


@triton.jit
def _delta(dt_raw, bias, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr):
    x = dt_raw.to(tl.float32)
    if HAS_BIAS:
        x = x + bias
    dl = x
    if SOFTPLUS:
        dl = _softplus(x)
    return x, dl


@triton.jit
def _channel_params(bias_ptr, Dskip_ptr, d, d_mask, BLOCK_D: tl.constexpr, HAS_BIAS: tl.constexpr,
                    HAS_D: tl.constexpr):
    """delta_bias and D of the program's channels in float32; zeros where they are not given."""
    bias = tl.zeros((BLOCK_D,), dtype=tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + d, mask=d_mask, other=0.0).to(tl.float32)
    Dskip = tl.zeros((BLOCK_D,), dtype=tl.float32)
    if HAS_D:
        Dskip = tl.load(Dskip_ptr + d, mask=d_mask, other=0.0).to(tl.float32)
    return bias, Dskip


@triton.jit
def _state_block(A_ptr, s_ad, s_an, pid_g, pid_c, dim_group, n_state, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
                 n0=0):
    """The program's channels and states, laid out (BLOCK_N, BLOCK_D) as the chunked kernels' tiles
    are: channel indices within the group (d_loc) and overall (d), state indices (n, from n0), their
    masks, and A over them in float32 (0 where masked)."""
    d_loc = pid_c * BLOCK_D + tl.arange(0, BLOCK_D)
    d_mask = d_loc < dim_group
    d = pid_g * dim_group + d_loc
    n = n0 + tl.arange(0, BLOCK_N)
    n_mask = n < n_state
    nd_mask = n_mask[:, None] & d_mask[None, :]
    A = tl.load(A_ptr + n[:, None] * s_an + d[None, :] * s_ad, mask=nd_mask, other=0.0).to(tl.float32)
    return d_loc, d_mask, d, n, n_mask, nd_mask, A


@triton.jit
def _scan_fwd_kernel(
    u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, Dskip_ptr, bias_ptr, y_ptr, ckpt_ptr,
    length, groups, dim_group, n_state,
    s_ub, s_ud, s_ul, s_tb, s_td, s_tl, s_ad, s_an,
    s_bb, s_bg, s_bn, s_bl, s_cb, s_cg, s_cn, s_cl, s_yb, s_yd, s_yl,
    HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, STORE_CKPT: tl.constexpr,
    CHUNK: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
):
    pid_b, pid_g, pid_c = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    d_loc = pid_c * BLOCK_D + tl.arange(0, BLOCK_D)
    d_mask = d_loc < dim_group
    d = pid_g * dim_group + d_loc
    n = tl.arange(0, BLOCK_N)
    n_mask = n < n_state
    A2 = tl.load(A_ptr + d[:, None] * s_ad + n[None, :] * s_an,
                 mask=d_mask[:, None] & n_mask[None, :], other=0.0).to(tl.float32) * 1.4426950408889634
    bias, Dskip = _channel_params(bias_ptr, Dskip_ptr, d, d_mask, BLOCK_D, HAS_BIAS, HAS_D)
    b64 = pid_b.to(tl.int64)
    u_row = u_ptr + b64 * s_ub + d * s_ud
    dt_row = dt_ptr + b64 * s_tb + d * s_td
    y_row = y_ptr + b64 * s_yb + d * s_yd
    B_row = B_ptr + b64 * s_bb + pid_g * s_bg + n * s_bn
    C_row = C_ptr + b64 * s_cb + pid_g * s_cg + n * s_cn
    prog = (pid_b * groups + pid_g) * tl.num_programs(2) + pid_c
    tile = tl.arange(0, BLOCK_D)[:, None] * BLOCK_N + n[None, :]
    ck_base = ckpt_ptr + prog.to(tl.int64) * (tl.cdiv(length, CHUNK) * BLOCK_D * BLOCK_N)

    h = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)
    # loads run one step ahead so their latency hides behind the current step's math
    u_n = tl.load(u_row, mask=d_mask, other=0.0)
    dt_n = tl.load(dt_row, mask=d_mask, other=0.0)
    B_n = tl.load(B_row, mask=n_mask, other=0.0)
    C_n = tl.load(C_row, mask=n_mask, other=0.0)
    for t in range(0, length):
        if STORE_CKPT:
            if t % CHUNK == 0:
                tl.store(ck_base + (t // CHUNK) * (BLOCK_D * BLOCK_N) + tile, h)
        u_t, dt_t, B_t, C_t = u_n.to(tl.float32), dt_n, B_n.to(tl.float32), C_n.to(tl.float32)
        ahead = t + 1 < length
        u_n = tl.load(u_row + (t + 1) * s_ul, mask=d_mask & ahead, other=0.0)
        dt_n = tl.load(dt_row + (t + 1) * s_tl, mask=d_mask & ahead, other=0.0)
        B_n = tl.load(B_row + (t + 1) * s_bl, mask=n_mask & ahead, other=0.0)
        C_n = tl.load(C_row + (t + 1) * s_cl, mask=n_mask & ahead, other=0.0)
        _, dl = _delta(dt_t, bias, HAS_BIAS, SOFTPLUS)
        h = tl.exp2(dl[:, None] * A2) * h + (dl * u_t)[:, None] * B_t[None, :]
        y = tl.sum(h * C_t[None, :], axis=1)
        if HAS_D:
            y += Dskip * u_t
        tl.store(y_row + t * s_yl, y.to(y_ptr.dtype.element_ty), mask=d_mask)


@triton.jit
def _combine(a1, b1, a2, b2):
    # step (a1, b1) then step (a2, b2): h -> a2 * (a1 * h + b1) + b2
    return a1 * a2, a2 * b1 + b2


@triton.jit
def _chunk_rows(path_row, t0, s, length, PATHS: tl.constexpr):
    """Where steps t0 .. t0 + T - 1 read their inputs and write y, added to the tiles' rows
    (`_scan_fwd_chunked_kernel`), and whether each step exists (T,). Without PATHS the tiles hold
    the steps 0 .. T-1 and this is the scalar t0; with PATHS it is the (T, 1) rows the group's
    path (`path_row`, its row of the (G, L) table) visits at those steps."""
    steps = t0 + s
    live = steps < length
    if PATHS:
        rows = tl.load(path_row + steps, mask=live, other=0)[:, None]
    else:
        rows = t0
    return rows, live


@triton.jit
def _load_chunk(u_tile, dt_tile, B_tile, C_tile, s_ul, s_tl, s_bl, s_cl, rows, live, d_mask, n_mask, bias,
                HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr):
    """u, delta (T, BLOCK_D) and B, C (T, BLOCK_N) of one chunk (`_chunk_rows`), in float32.

    Steps past the end get delta = 0, so dA = 1 and delta*u*B = 0: they leave the state unchanged.
    Converting here, in the layout of the loads, keeps Triton from moving the conversion (and
    the softplus) after the layout change, where every warp would redo it on more elements.
    """
    live = live[:, None]
    u = tl.load(u_tile + rows * s_ul, mask=live & d_mask[None, :], other=0.0).to(tl.float32)
    dt = tl.load(dt_tile + rows * s_tl, mask=live & d_mask[None, :], other=0.0)
    B = tl.load(B_tile + rows * s_bl, mask=live & n_mask[None, :], other=0.0).to(tl.float32)
    C = tl.load(C_tile + rows * s_cl, mask=live & n_mask[None, :], other=0.0).to(tl.float32)
    _, dl = _delta(dt, bias[None, :], HAS_BIAS, SOFTPLUS)
    return u, tl.where(live, dl, 0.0), B, C


@triton.jit
def _tile_states(h, u, dl, B, A2, s):
    """States after each of T steps (T, BLOCK_N, BLOCK_D) from the state h (1, BLOCK_N, BLOCK_D) before them."""
    dA = tl.exp2(dl[:, None, :] * A2[None, :, :])
    dBu = (dl * u)[:, None, :] * B[:, :, None]
    # The carried state enters as part of the first step, so the scan yields the states
    # themselves and its running products of dA are dead code; -0.0 elsewhere adds nothing.
    dBu += tl.where((s == 0)[:, None, None], dA * h, -0.0)
    _, hs = tl.associative_scan((dA, dBu), 0, _combine)
    return hs


@triton.jit
def _scan_fwd_chunked_kernel(
    u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, Dskip_ptr, bias_ptr, y_ptr, ckpt_ptr, path_ptr,
    length, groups, dim_group, n_state,
    s_ub, s_ug, s_ud, s_ul, s_tb, s_tg, s_td, s_tl, s_ad, s_an,
    s_bb, s_bg, s_bn, s_bl, s_cb, s_cg, s_cn, s_cl, s_yb, s_yg, s_yd, s_yl,
    HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, STORE_CKPT: tl.constexpr,
    CHUNK: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, T: tl.constexpr,
    CKPT_BLOCK_D: tl.constexpr, PATHS: tl.constexpr,
):
    # u, delta and y are addressed as (batch, group, channel in group, row) with a stride each, so
    # that (B, D, L) tensors and SS3D's layouts (selective_scan_paths_triton) share this kernel.
    # PATHS: step t of group g reads and writes row path[g, t] (`_chunk_rows`).
    pid_b, pid_g, pid_c = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    d_loc, d_mask, d, n, n_mask, nd_mask, A = _state_block(A_ptr, s_ad, s_an, pid_g, pid_c, dim_group, n_state,
                                                           BLOCK_D, BLOCK_N)
    A2 = A * 1.4426950408889634                                         # (BLOCK_N, BLOCK_D)
    bias, Dskip = _channel_params(bias_ptr, Dskip_ptr, d, d_mask, BLOCK_D, HAS_BIAS, HAS_D)
    b64 = pid_b.to(tl.int64)
    s = tl.arange(0, T)
    # Tiles are (T, channels) and (T, states), time first: in the (T, BLOCK_N, BLOCK_D) tensors
    # below Triton then spreads channels (and states) over lanes and keeps the T steps of each
    # in one thread's registers, so the scan runs within threads, without shuffles.
    # Without PATHS the tiles hold steps 0 .. T-1 and each chunk adds t0 to them; with PATHS they
    # are one row of columns, to which each chunk adds its rows (`_chunk_rows`).
    s0 = 0 if PATHS else s[:, None]
    u_tile = u_ptr + b64 * s_ub + pid_g * s_ug + d_loc[None, :] * s_ud + s0 * s_ul
    dt_tile = dt_ptr + b64 * s_tb + pid_g * s_tg + d_loc[None, :] * s_td + s0 * s_tl
    y_tile = y_ptr + b64 * s_yb + pid_g * s_yg + d_loc[None, :] * s_yd + s0 * s_yl
    B_tile = B_ptr + b64 * s_bb + pid_g * s_bg + n[None, :] * s_bn + s0 * s_bl
    C_tile = C_ptr + b64 * s_cb + pid_g * s_cg + n[None, :] * s_cn + s0 * s_cl
    path_row = path_ptr + pid_g * length
    # The checkpoints go where the backward kernel, whose channel block is CKPT_BLOCK_D, reads them,
    # so this kernel's BLOCK_D is free to follow its own register budget.
    ck_prog = (pid_b * groups + pid_g) * tl.cdiv(dim_group, CKPT_BLOCK_D) + d_loc // CKPT_BLOCK_D
    ck_col = ck_prog.to(tl.int64) * (tl.cdiv(length, CHUNK) * CKPT_BLOCK_D * BLOCK_N) + (d_loc % CKPT_BLOCK_D) * BLOCK_N
    ck_tile = ckpt_ptr + n[None, :, None] + ck_col[None, None, :]

    # kept 3D, (1, BLOCK_N, BLOCK_D), so that it stays in the layout of the chunk's tensors
    h = tl.zeros((1, BLOCK_N, BLOCK_D), dtype=tl.float32)
    # the next chunk is loaded (and its delta computed) before this chunk's math, so the load
    # latency hides behind it
    rows_n, live_n = _chunk_rows(path_row, 0, s, length, PATHS)
    u_n, dl_n, B_n, C_n = _load_chunk(u_tile, dt_tile, B_tile, C_tile, s_ul, s_tl, s_bl, s_cl, rows_n, live_n,
                                      d_mask, n_mask, bias, HAS_BIAS, SOFTPLUS)
    for t0 in range(0, length, T):
        if STORE_CKPT:
            if t0 % CHUNK == 0:  # T divides CHUNK, so every checkpoint falls on a chunk start
                tl.store(ck_tile + (t0 // CHUNK) * (CKPT_BLOCK_D * BLOCK_N), h, mask=nd_mask[None, :, :])
        u, dl, B, C, rows, live = u_n, dl_n, B_n, C_n, rows_n, live_n
        rows_n, live_n = _chunk_rows(path_row, t0 + T, s, length, PATHS)
        u_n, dl_n, B_n, C_n = _load_chunk(u_tile, dt_tile, B_tile, C_tile, s_ul, s_tl, s_bl, s_cl, rows_n, live_n,
                                          d_mask, n_mask, bias, HAS_BIAS, SOFTPLUS)
        hs = _tile_states(h, u, dl, B, A2, s)                           # (T, BLOCK_N, BLOCK_D)
        y = tl.sum(hs * C[:, :, None], axis=1)                          # (T, BLOCK_D)
        if HAS_D:
            y += Dskip[None, :] * u
        tl.store(y_tile + rows * s_yl, y.to(y_ptr.dtype.element_ty), mask=live[:, None] & d_mask[None, :])
        # the last step's state, exactly: a sum of it and -0.0s
        h = tl.sum(tl.where((s == T - 1)[:, None, None], hs, -0.0), axis=0, keep_dims=True)


@triton.jit
def _scan_bwd_kernel(
    u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, Dskip_ptr, bias_ptr, dy_ptr, ckpt_ptr, ws_ptr,
    du_ptr, ddt_ptr, dA_ptr, dB_ptr, dC_ptr, dD_ptr, dbias_ptr,
    length, n_chunks, groups, dim, dim_group, n_state,
    s_ub, s_ud, s_ul, s_tb, s_td, s_tl, s_ad, s_an,
    s_bb, s_bg, s_bn, s_bl, s_cb, s_cg, s_cn, s_cl, s_yb, s_yd, s_yl,
    HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    CHUNK: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
):
    # outputs du, ddt (Bt, D, L) and dB, dC (Bt, G, N, L) are contiguous; dA (Bt, D, N), dD, dbias (Bt, D)
    pid_b, pid_g, pid_c = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    d_loc = pid_c * BLOCK_D + tl.arange(0, BLOCK_D)
    d_mask = d_loc < dim_group
    d = pid_g * dim_group + d_loc
    n = tl.arange(0, BLOCK_N)
    n_mask = n < n_state
    dn_mask = d_mask[:, None] & n_mask[None, :]
    A = tl.load(A_ptr + d[:, None] * s_ad + n[None, :] * s_an, mask=dn_mask, other=0.0).to(tl.float32)
    A2 = A * 1.4426950408889634
    bias, Dskip = _channel_params(bias_ptr, Dskip_ptr, d, d_mask, BLOCK_D, HAS_BIAS, HAS_D)
    b64 = pid_b.to(tl.int64)
    u_row = u_ptr + b64 * s_ub + d * s_ud
    dt_row = dt_ptr + b64 * s_tb + d * s_td
    dy_row = dy_ptr + b64 * s_yb + d * s_yd
    B_row = B_ptr + b64 * s_bb + pid_g * s_bg + n * s_bn
    C_row = C_ptr + b64 * s_cb + pid_g * s_cg + n * s_cn
    out_row = b64 * dim * length + d * length
    bc_row = (b64 * groups + pid_g) * n_state * length + n * length
    prog = (pid_b * groups + pid_g) * tl.num_programs(2) + pid_c
    tile = tl.arange(0, BLOCK_D)[:, None] * BLOCK_N + n[None, :]
    ck_base = ckpt_ptr + prog.to(tl.int64) * (n_chunks * BLOCK_D * BLOCK_N)
    ws_base = ws_ptr + prog.to(tl.int64) * (CHUNK * BLOCK_D * BLOCK_N)

    carry = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)  # exp(dl_{t+1} A) * g_{t+1}
    dA_acc = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)
    dD_acc = tl.zeros((BLOCK_D,), dtype=tl.float32)
    dbias_acc = tl.zeros((BLOCK_D,), dtype=tl.float32)
    for i in range(0, n_chunks):
        c = n_chunks - 1 - i
        t0 = c * CHUNK
        clen = tl.minimum(length - t0, CHUNK)  # the last chunk may be short
        # recompute the chunk's states h_{t-1} from its checkpoint into the workspace
        h = tl.load(ck_base + c * (BLOCK_D * BLOCK_N) + tile)
        for t in range(t0, t0 + clen):
            tl.store(ws_base + (t - t0) * (BLOCK_D * BLOCK_N) + tile, h)
            u_t = tl.load(u_row + t * s_ul, mask=d_mask, other=0.0).to(tl.float32)
            _, dl = _delta(tl.load(dt_row + t * s_tl, mask=d_mask, other=0.0), bias, HAS_BIAS, SOFTPLUS)
            B_t = tl.load(B_row + t * s_bl, mask=n_mask, other=0.0).to(tl.float32)
            h = tl.exp2(dl[:, None] * A2) * h + (dl * u_t)[:, None] * B_t[None, :]
        tl.debug_barrier()
        for j in range(0, clen):
            t = t0 + clen - 1 - j
            h_prev = tl.load(ws_base + (t - t0) * (BLOCK_D * BLOCK_N) + tile)
            u_t = tl.load(u_row + t * s_ul, mask=d_mask, other=0.0).to(tl.float32)
            x, dl = _delta(tl.load(dt_row + t * s_tl, mask=d_mask, other=0.0), bias, HAS_BIAS, SOFTPLUS)
            dy = tl.load(dy_row + t * s_yl, mask=d_mask, other=0.0).to(tl.float32)
            B_t = tl.load(B_row + t * s_bl, mask=n_mask, other=0.0).to(tl.float32)
            C_t = tl.load(C_row + t * s_cl, mask=n_mask, other=0.0).to(tl.float32)
            a = tl.exp2(dl[:, None] * A2)
            dlu = dl * u_t
            h = a * h_prev + dlu[:, None] * B_t[None, :]
            g = dy[:, None] * C_t[None, :] + carry
            tl.atomic_add(dC_ptr + bc_row + t, tl.sum(dy[:, None] * h, axis=0), mask=n_mask)
            tl.atomic_add(dB_ptr + bc_row + t, tl.sum(g * dlu[:, None], axis=0), mask=n_mask)
            gah = g * a * h_prev
            dA_acc += gah * dl[:, None]
            gB = tl.sum(g * B_t[None, :], axis=1)
            ddl = tl.sum(gah * A, axis=1) + gB * u_t
            du = gB * dl
            if HAS_D:
                du += Dskip * dy
                dD_acc += dy * u_t
            if SOFTPLUS:
                ddl = tl.where(x > 20.0, ddl, ddl / (1.0 + tl.exp(-x)))
            dbias_acc += ddl
            tl.store(du_ptr + out_row + t, du.to(du_ptr.dtype.element_ty), mask=d_mask)
            tl.store(ddt_ptr + out_row + t, ddl.to(ddt_ptr.dtype.element_ty), mask=d_mask)
            carry = a * g
        tl.debug_barrier()
    part = b64 * dim + d
    tl.store(dA_ptr + part[:, None] * n_state + n[None, :], dA_acc, mask=dn_mask)
    tl.store(dD_ptr + part, dD_acc, mask=d_mask)
    tl.store(dbias_ptr + part, dbias_acc, mask=d_mask)



@triton.jit
def _load_delta(dt_tile, steps, length, d_mask, bias, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr):
    """x (delta + bias) and delta (T, BLOCK_D) at `steps`; 0 past the end, where the step is the identity."""
    live = (steps < length)[:, None]
    x, dl = _delta(tl.load(dt_tile, mask=live & d_mask[None, :], other=0.0), bias[None, :], HAS_BIAS, SOFTPLUS)
    return x, tl.where(live, dl, 0.0)


@triton.jit
def _adjoint_tile(g_next, dt_next_rtile, C_rtile, dy_rtile, t0, r, s, length, s_tl, s_cl, s_yl, d_mask, n_mask,
                  bias, A2, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, T: tl.constexpr):
    """The adjoint g_t = C_t dy_t + exp(dl_{t+1} A) g_{t+1} over the T steps of the tile at t0.

    g_next (1, BLOCK_N, BLOCK_D) is g of the step after the tile. Returns g of the tile's steps,
    last step first (T, BLOCK_N, BLOCK_D), the g of its first step (the next g_next) and
    dl_{t+1} of its steps, last first (T, BLOCK_D). The scan runs forwards over the tile read last
    step first (associative_scan(reverse=True) has miscompiled non-commutative combines: triton#4362).
    """
    _, dl_next = _load_delta(dt_next_rtile + t0 * s_tl, t0 + r + 1, length, d_mask, bias, HAS_BIAS, SOFTPLUS)
    C_r = tl.load(C_rtile + t0 * s_cl, mask=(t0 + r < length)[:, None] & n_mask[None, :], other=0.0)
    dy_r = tl.load(dy_rtile + t0 * s_yl, mask=(t0 + r < length)[:, None] & d_mask[None, :], other=0.0)
    a_next = tl.exp2(dl_next[:, None, :] * A2[None, :, :])
    beta = C_r.to(tl.float32)[:, :, None] * dy_r.to(tl.float32)[:, None, :]
    beta += tl.where((s == 0)[:, None, None], a_next * g_next, -0.0)
    _, g_r = tl.associative_scan((a_next, beta), 0, _combine)
    g_first = tl.sum(tl.where((s == T - 1)[:, None, None], g_r, -0.0), axis=0, keep_dims=True)
    return g_r, g_first, dl_next


@triton.jit
def _scan_bwd_local_kernel(
    dt_ptr, A_ptr, C_ptr, bias_ptr, dy_ptr, gloc_ptr, dlsum_ptr,
    length, seg_len, n_segs, groups, dim_group, n_state,
    s_tb, s_td, s_tl, s_ad, s_an, s_cb, s_cg, s_cn, s_cl, s_yb, s_yd, s_yl,
    HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, T: tl.constexpr,
):
    # Segment-parallel backward, pass 1 of 3; one program per (batch element x segment, group,
    # channel block), a segment being `seg_len` steps (whole checkpoint chunks). The adjoint is
    # linear in what enters a segment from the one after it: g_t = gloc_t + (prod_{s=t+1}^{e+1}
    # exp(dl_s A)) G, where gloc runs the segment's recurrence from zero, e is its last step and G
    # the adjoint at the next segment's first step. So each segment gives, on its own, gloc at its
    # first step t0 and sum_{s=t0+1}^{e+1} dl_s (the product of the exps is exp(A times that sum));
    # pass 2 chains the segments, pass 3 is the chunked backward run on every segment at once.
    pid_0, pid_g, pid_c = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    pid_b, seg = pid_0 // n_segs, pid_0 % n_segs
    # (no `_` for the parts not used: Triton would take it for the loop's `_` below)
    d_loc, d_mask, d, n, n_mask, nd_mask, A = _state_block(A_ptr, s_ad, s_an, pid_g, pid_c, dim_group, n_state,
                                                           BLOCK_D, BLOCK_N)
    A2 = A * 1.4426950408889634
    bias, Dskip = _channel_params(bias_ptr, bias_ptr, d, d_mask, BLOCK_D, HAS_BIAS, False)
    b64 = pid_b.to(tl.int64)
    s = tl.arange(0, T)
    r = T - 1 - s
    dt_next_rtile = dt_ptr + b64 * s_tb + (r + 1)[:, None] * s_tl + d[None, :] * s_td
    dy_rtile = dy_ptr + b64 * s_yb + r[:, None] * s_yl + d[None, :] * s_yd
    C_rtile = C_ptr + b64 * s_cb + pid_g * s_cg + r[:, None] * s_cl + n[None, :] * s_cn
    c0 = seg * seg_len
    n_tiles = tl.cdiv(tl.minimum(length - c0, seg_len), T)
    g_next = tl.zeros((1, BLOCK_N, BLOCK_D), dtype=tl.float32)
    dl_sum = tl.zeros((BLOCK_D,), dtype=tl.float32)
    for j in range(0, n_tiles):
        t0 = c0 + (n_tiles - 1 - j) * T
        _, g_next, dl_next = _adjoint_tile(g_next, dt_next_rtile, C_rtile, dy_rtile, t0, r, s, length, s_tl, s_cl,
                                           s_yl, d_mask, n_mask, bias, A2, HAS_BIAS, SOFTPLUS, T)
        dl_sum += tl.sum(dl_next, axis=0)
    slot = ((pid_b * groups + pid_g) * tl.num_programs(2) + pid_c).to(tl.int64) * n_segs + seg
    tl.store(gloc_ptr + slot * (BLOCK_N * BLOCK_D) + n[None, :, None] * BLOCK_D + tl.arange(0, BLOCK_D)[None, None, :],
             g_next)
    tl.store(dlsum_ptr + slot * BLOCK_D + tl.arange(0, BLOCK_D), dl_sum)


@triton.jit
def _scan_bwd_carry_kernel(
    A_ptr, gloc_ptr, dlsum_ptr, carry_ptr, n_segs, groups, dim_group, n_state, s_ad, s_an,
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
):
    # Segment-parallel backward, pass 2 of 3: last segment first, G_k = gloc_k + exp(A dlsum_k) G_{k+1};
    # stores what enters each segment k from the one after it (G_{k+1}; zero for the last one).
    pid_b, pid_g, pid_c = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    d_loc, d_mask, d, n, n_mask, nd_mask, A = _state_block(A_ptr, s_ad, s_an, pid_g, pid_c, dim_group, n_state,
                                                           BLOCK_D, BLOCK_N)
    A2 = A * 1.4426950408889634
    base = ((pid_b * groups + pid_g) * tl.num_programs(2) + pid_c).to(tl.int64) * n_segs
    nd = n[:, None] * BLOCK_D + tl.arange(0, BLOCK_D)[None, :]
    G = tl.zeros((BLOCK_N, BLOCK_D), dtype=tl.float32)
    for i in range(0, n_segs):
        slot = base + (n_segs - 1 - i)
        tl.store(carry_ptr + slot * (BLOCK_N * BLOCK_D) + nd, G)
        dl_sum = tl.load(dlsum_ptr + slot * BLOCK_D + tl.arange(0, BLOCK_D))
        G = tl.load(gloc_ptr + slot * (BLOCK_N * BLOCK_D) + nd) + tl.exp2(A2 * dl_sum[None, :]) * G


@triton.jit
def _segment_chunks(pid_0, n_segs, seg_chunks, n_chunks, SEG_PAR: tl.constexpr):
    """(batch element, segment, first, count) of a backward program: it runs chunks first ..
    first + count - 1, counted from the last. SEG_PAR: axis 0 is batch element x segment of
    `seg_chunks` checkpoint chunks; else the element's every chunk (segment 0)."""
    if SEG_PAR:
        pid_b, seg = pid_0 // n_segs, pid_0 % n_segs
        stop = tl.minimum((seg + 1) * seg_chunks, n_chunks)  # the segment: chunks seg * seg_chunks .. stop - 1
        first, count = n_chunks - stop, stop - seg * seg_chunks
    else:
        pid_b, seg, first, count = pid_0, 0, 0, n_chunks
    return pid_b, seg, first, count


@triton.jit
def _store_param_grads(dA_ptr, dD_ptr, dbias_ptr, dA_acc, dD_acc, dbias_acc, pid_0, dim, d, d_mask, n, nd_mask,
                       n_state, channel_sums=True):
    """A backward program's sums of dA (BLOCK_N, BLOCK_D), dD and dbias (BLOCK_D,), into the row of
    pid_0 (the batch element, x segment in SEG_PAR); the launcher sums the rows. Of the programs
    that split a channel block's states, only the first stores dD and dbias (`channel_sums`)."""
    part = pid_0.to(tl.int64) * dim + d
    tl.store(dA_ptr + part[None, :] * n_state + n[:, None], dA_acc, mask=nd_mask)
    tl.store(dD_ptr + part, dD_acc, mask=d_mask & channel_sums)
    tl.store(dbias_ptr + part, dbias_acc, mask=d_mask & channel_sums)


@triton.jit
def _scan_bwd_chunked_kernel(
    u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, Dskip_ptr, bias_ptr, dy_ptr, ckpt_ptr, ws_ptr, carry_ptr,
    du_ptr, ddt_ptr, dA_ptr, dB_ptr, dC_ptr, dD_ptr, dbias_ptr,
    length, n_chunks, groups, dim, dim_group, n_state, part_stride, seg_chunks, n_segs,
    s_ub, s_ud, s_ul, s_tb, s_td, s_tl, s_ad, s_an,
    s_bb, s_bg, s_bn, s_bl, s_cb, s_cg, s_cn, s_cl, s_yb, s_yd, s_yl,
    HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    CHUNK: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, T: tl.constexpr,
    PARTIAL: tl.constexpr, SEG_PAR: tl.constexpr, N_SPLIT: tl.constexpr = 1,
):
    # Outputs as in _scan_bwd_kernel; tensors are (T, BLOCK_N, BLOCK_D), time first, for the reason
    # given in _scan_fwd_chunked_kernel. PARTIAL: dB and dC are stored per channel block (slice
    # pid_c, `part_stride` elements apart) for the launcher to sum, instead of added atomically
    # into one (B, G, N, L) by every channel block of the group. SEG_PAR (pass 3 of the
    # segment-parallel backward): axis 0 is batch element x segment of `seg_chunks` checkpoint
    # chunks; each program runs its segment's chunks from the adjoint that pass 2 left in
    # carry_ptr, and dA, dD, dbias get a row per (element, segment).
    # N_SPLIT > 1 (not with SEG_PAR): the states of a channel block are split over N_SPLIT programs
    # (axis 2 is channel block x split) of BLOCK_N states each, so that each thread holds a part of
    # the state and more programs share a multiprocessor. du and ddelta are sums over states: each
    # program adds its part atomically into float32 outputs the launcher zeroed (two addends onto
    # zero give the same sum in either order); the first adds D dy to du and alone stores dD.
    pid_0, pid_g, pid_2 = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    pid_c, pid_s = pid_2 // N_SPLIT, pid_2 % N_SPLIT
    pid_b, seg, first, count = _segment_chunks(pid_0, n_segs, seg_chunks, n_chunks, SEG_PAR)
    d_loc, d_mask, d, n, n_mask, nd_mask, A = _state_block(A_ptr, s_ad, s_an, pid_g, pid_c, dim_group, n_state,
                                                           BLOCK_D, BLOCK_N, pid_s * BLOCK_N)
    A2 = A * 1.4426950408889634                                         # (BLOCK_N, BLOCK_D)
    bias, Dskip = _channel_params(bias_ptr, Dskip_ptr, d, d_mask, BLOCK_D, HAS_BIAS, HAS_D)
    b64 = pid_b.to(tl.int64)
    s = tl.arange(0, T)
    r = T - 1 - s  # the tile's steps, last first
    u_tile = u_ptr + b64 * s_ub + s[:, None] * s_ul + d[None, :] * s_ud
    dt_tile = dt_ptr + b64 * s_tb + s[:, None] * s_tl + d[None, :] * s_td
    dy_tile = dy_ptr + b64 * s_yb + s[:, None] * s_yl + d[None, :] * s_yd
    B_tile = B_ptr + b64 * s_bb + pid_g * s_bg + s[:, None] * s_bl + n[None, :] * s_bn
    C_tile = C_ptr + b64 * s_cb + pid_g * s_cg + s[:, None] * s_cl + n[None, :] * s_cn
    # the adjoint runs backwards in time; its scan runs forwards over tiles read last step first
    dt_next_rtile = dt_ptr + b64 * s_tb + (r + 1)[:, None] * s_tl + d[None, :] * s_td
    dy_rtile = dy_ptr + b64 * s_yb + r[:, None] * s_yl + d[None, :] * s_yd
    C_rtile = C_ptr + b64 * s_cb + pid_g * s_cg + r[:, None] * s_cl + n[None, :] * s_cn
    out_tile = b64 * dim * length + d[None, :] * length + s[:, None]
    bc_tile = (b64 * groups + pid_g) * n_state * length + n[None, :] * length + s[:, None]
    prog = (pid_b * groups + pid_g) * (tl.num_programs(2) // N_SPLIT) + pid_c  # the channel block's
    bc_part = pid_c.to(tl.int64) * part_stride  # this channel block's slice of dB, dC (PARTIAL)
    # checkpoints are (BLOCK_D, N_SPLIT * BLOCK_N) blocks, one per channel block, read here as
    # (1, BLOCK_N, BLOCK_D): this program's states of them
    ck_tile = (ckpt_ptr + prog.to(tl.int64) * (n_chunks * BLOCK_D * BLOCK_N * N_SPLIT)
               + n[None, :, None] + tl.arange(0, BLOCK_D)[None, None, :] * (BLOCK_N * N_SPLIT))
    # the workspace holds only the state at the start of each tile of a chunk: CHUNK / T states
    # (in SEG_PAR, one such workspace for each segment; with N_SPLIT, one for each program)
    ws_prog = prog.to(tl.int64) * N_SPLIT + pid_s
    if SEG_PAR:
        ws_prog = ws_prog * n_segs + seg
    nd_block = tl.arange(0, BLOCK_N)[None, :, None] * BLOCK_D + tl.arange(0, BLOCK_D)[None, None, :]
    ws_tile = ws_ptr + ws_prog * ((CHUNK // T) * BLOCK_D * BLOCK_N) + nd_block

    g_next = tl.zeros((1, BLOCK_N, BLOCK_D), dtype=tl.float32)  # g of the step after the tile
    if SEG_PAR:  # the adjoint at the next segment's first step, from pass 2
        g_next = tl.load(carry_ptr + ws_prog * (BLOCK_N * BLOCK_D) + nd_block)
    dA_acc = tl.zeros((BLOCK_N, BLOCK_D), dtype=tl.float32)
    dD_acc = tl.zeros((BLOCK_D,), dtype=tl.float32)
    dbias_acc = tl.zeros((BLOCK_D,), dtype=tl.float32)
    for i in range(first, first + count):
        c0 = (n_chunks - 1 - i) * CHUNK
        n_tiles = tl.cdiv(tl.minimum(length - c0, CHUNK), T)
        h = tl.load(ck_tile + (c0 // CHUNK) * (BLOCK_D * BLOCK_N * N_SPLIT))
        for k in range(0, n_tiles):
            t0 = c0 + k * T
            tl.store(ws_tile + k * (BLOCK_D * BLOCK_N), h)
            u = tl.load(u_tile + t0 * s_ul, mask=(t0 + s < length)[:, None] & d_mask[None, :], other=0.0)
            _, dl = _load_delta(dt_tile + t0 * s_tl, t0 + s, length, d_mask, bias, HAS_BIAS, SOFTPLUS)
            B = tl.load(B_tile + t0 * s_bl, mask=(t0 + s < length)[:, None] & n_mask[None, :], other=0.0)
            hs = _tile_states(h, u.to(tl.float32), dl, B.to(tl.float32), A2, s)
            h = tl.sum(tl.where((s == T - 1)[:, None, None], hs, -0.0), axis=0, keep_dims=True)
        tl.debug_barrier()
        for j in range(0, n_tiles):
            t0 = c0 + (n_tiles - 1 - j) * T
            live = (t0 + s < length)[:, None]
            h = tl.load(ws_tile + (n_tiles - 1 - j) * (BLOCK_D * BLOCK_N))
            u = tl.load(u_tile + t0 * s_ul, mask=live & d_mask[None, :], other=0.0).to(tl.float32)
            x, dl = _load_delta(dt_tile + t0 * s_tl, t0 + s, length, d_mask, bias, HAS_BIAS, SOFTPLUS)
            B = tl.load(B_tile + t0 * s_bl, mask=live & n_mask[None, :], other=0.0).to(tl.float32)
            dy = tl.load(dy_tile + t0 * s_yl, mask=live & d_mask[None, :], other=0.0).to(tl.float32)
            dlu = dl * u
            g_r, g_next, _ = _adjoint_tile(g_next, dt_next_rtile, C_rtile, dy_rtile, t0, r, s, length, s_tl, s_cl,
                                           s_yl, d_mask, n_mask, bias, A2, HAS_BIAS, SOFTPLUS, T)
            g = tl.flip(g_r, 0)
            # one atomic add per tile: the T steps' sums over this program's channels
            bc_mask = live & n_mask[None, :]
            if PARTIAL:
                tl.store(dB_ptr + bc_part + bc_tile + t0, tl.sum(g * dlu[:, None, :], axis=2), mask=bc_mask)
            else:
                tl.atomic_add(dB_ptr + bc_tile + t0, tl.sum(g * dlu[:, None, :], axis=2), mask=bc_mask)
            gB = tl.sum(g * B[:, :, None], axis=1)                       # (T, BLOCK_D)
            hs = _tile_states(h, u, dl, B, A2, s)
            if PARTIAL:
                tl.store(dC_ptr + bc_part + bc_tile + t0, tl.sum(hs * dy[:, None, :], axis=2), mask=bc_mask)
            else:
                tl.atomic_add(dC_ptr + bc_tile + t0, tl.sum(hs * dy[:, None, :], axis=2), mask=bc_mask)
            ah = hs - dlu[:, None, :] * B[:, :, None]  # exp(dl_t A) h_{t-1}, without shifting hs by a step
            gah = g * ah
            dA_acc += tl.sum(gah * dl[:, None, :], axis=0)
            ddl = tl.sum(gah * A[None, :, :], axis=1) + gB * u
            du = gB * dl
            if HAS_D:
                if pid_s == 0:
                    du += Dskip[None, :] * dy
                    dD_acc += tl.sum(dy * u, axis=0)
            if SOFTPLUS:
                ddl = tl.where(x > 20.0, ddl, ddl / (1.0 + tl.exp(-x)))
            ddl = tl.where(live, ddl, 0.0)
            dbias_acc += tl.sum(ddl, axis=0)
            out_mask = live & d_mask[None, :]
            if N_SPLIT > 1:
                tl.atomic_add(du_ptr + out_tile + t0, du, mask=out_mask)
                tl.atomic_add(ddt_ptr + out_tile + t0, ddl, mask=out_mask)
            else:
                tl.store(du_ptr + out_tile + t0, du.to(du_ptr.dtype.element_ty), mask=out_mask)
                tl.store(ddt_ptr + out_tile + t0, ddl.to(ddt_ptr.dtype.element_ty), mask=out_mask)
        tl.debug_barrier()
    _store_param_grads(dA_ptr, dD_ptr, dbias_ptr, dA_acc, dD_acc, dbias_acc, pid_0, dim, d, d_mask, n, nd_mask,
                       n_state, pid_s == 0)


@triton.jit
def _step_inputs(cols, t, length, s_ul, s_tl, s_bl, d_mask, n_mask, bias, HAS_BIAS: tl.constexpr,
                 SOFTPLUS: tl.constexpr):
    """u, x (delta + bias), delta (BLOCK_D,) and B (BLOCK_N,) of step t in float32, from
    cols = (u_base, u_cols, dt_base, dt_cols, B_base, B_rows); past the end delta = u = B = 0,
    so the step leaves the state unchanged."""
    u_base, u_cols, dt_base, dt_cols, B_base, B_rows = cols
    live = t < length
    u = tl.load(u_base + (u_cols + t * s_ul), mask=d_mask & live, other=0.0).to(tl.float32)
    x, dl = _delta(tl.load(dt_base + (dt_cols + t * s_tl), mask=d_mask & live, other=0.0), bias, HAS_BIAS, SOFTPLUS)
    B = tl.load(B_base + (B_rows + t * s_bl), mask=n_mask & live, other=0.0).to(tl.float32)
    return u, x, tl.where(live, dl, 0.0), B


@triton.jit
def _scan_bwd_steps_kernel(
    u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, Dskip_ptr, bias_ptr, dy_ptr, ckpt_ptr, ws_ptr, carry_ptr,
    du_ptr, ddt_ptr, dA_ptr, dB_ptr, dC_ptr, dD_ptr, dbias_ptr,
    length, n_chunks, groups, dim, dim_group, n_state, part_stride, seg_chunks, n_segs,
    s_ub, s_ud, s_ul, s_tb, s_td, s_tl, s_ad, s_an,
    s_bb, s_bg, s_bn, s_bl, s_cb, s_cg, s_cn, s_cl, s_yb, s_yd, s_yl,
    HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    CHUNK: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, T: tl.constexpr,
    PARTIAL: tl.constexpr, SEG_PAR: tl.constexpr,
):
    # _scan_bwd_chunked_kernel's arguments, outputs, chunks, workspace and modes (PARTIAL,
    # SEG_PAR), with each tile's T steps unrolled on (BLOCK_N, BLOCK_D) tensors instead of scanned
    # as (T, BLOCK_N, BLOCK_D) ones. The scan's T steps sit in one thread's registers, where Triton
    # combines them one after another, so the unrolled steps do the same multiply-adds; only the
    # tile's T states, the adjoint and one step's temporaries are live at once. Built as launched
    # (unit strides), 8 warps at T=2 fit in 128 registers without spills, where the scanned tile
    # spills (benchmarks/kernel_resources.py --as-launched).
    pid_0, pid_g, pid_c = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    pid_b, seg, first, count = _segment_chunks(pid_0, n_segs, seg_chunks, n_chunks, SEG_PAR)
    d_loc, d_mask, d, n, n_mask, nd_mask, A = _state_block(A_ptr, s_ad, s_an, pid_g, pid_c, dim_group, n_state,
                                                           BLOCK_D, BLOCK_N)
    A2 = A * 1.4426950408889634                                         # (BLOCK_N, BLOCK_D)
    bias, Dskip = _channel_params(bias_ptr, Dskip_ptr, d, d_mask, BLOCK_D, HAS_BIAS, HAS_D)
    b64 = pid_b.to(tl.int64)
    # Scalar bases and int32 offsets rather than tensors of 64-bit pointers, which the compiler
    # keeps across the loops at two registers an element.
    cols = (u_ptr + b64 * s_ub, d * s_ud, dt_ptr + b64 * s_tb, d * s_td, B_ptr + b64 * s_bb + pid_g * s_bg, n * s_bn)
    dt_base, dt_cols = cols[2], cols[3]
    dy_base, dy_cols = dy_ptr + b64 * s_yb, d * s_yd
    C_base, C_rows = C_ptr + b64 * s_cb + pid_g * s_cg, n * s_cn
    out_base, out_cols = b64 * dim * length, d * length
    bc_base, bc_rows = (b64 * groups + pid_g) * n_state * length, n * length
    if PARTIAL:
        bc_base += pid_c.to(tl.int64) * part_stride
    prog = (pid_b * groups + pid_g) * tl.num_programs(2) + pid_c
    # states are (BLOCK_N, BLOCK_D), laid out as the checkpoints' (BLOCK_D, BLOCK_N) blocks, so
    # that the workspace and the checkpoints share one layout
    dn_block = n[:, None] + tl.arange(0, BLOCK_D)[None, :] * BLOCK_N
    ck_base = ckpt_ptr + prog.to(tl.int64) * (n_chunks * BLOCK_D * BLOCK_N)
    ws_prog = prog.to(tl.int64)
    if SEG_PAR:
        ws_prog = ws_prog * n_segs + seg
    ws_base = ws_ptr + ws_prog * ((CHUNK // T) * BLOCK_D * BLOCK_N)

    g = tl.zeros((BLOCK_N, BLOCK_D), dtype=tl.float32)  # the adjoint of the step after the tile
    if SEG_PAR:  # pass 2 stores it (BLOCK_N, BLOCK_D) with channels contiguous
        g = tl.load(carry_ptr + ws_prog * (BLOCK_N * BLOCK_D) + n[:, None] * BLOCK_D + tl.arange(0, BLOCK_D)[None, :])
    dA_acc = tl.zeros((BLOCK_N, BLOCK_D), dtype=tl.float32)
    dD_acc = tl.zeros((BLOCK_D,), dtype=tl.float32)
    dbias_acc = tl.zeros((BLOCK_D,), dtype=tl.float32)
    for i in range(first, first + count):
        c0 = (n_chunks - 1 - i) * CHUNK
        n_tiles = tl.cdiv(tl.minimum(length - c0, CHUNK), T)
        # the state at the start of each tile of the chunk, from its checkpoint, into the workspace
        h = tl.load(ck_base + (dn_block + (c0 // CHUNK) * (BLOCK_D * BLOCK_N)))
        for k in range(0, n_tiles):
            tl.store(ws_base + (dn_block + k * (BLOCK_D * BLOCK_N)), h)
            for s in tl.static_range(T):
                u, x, dl, B = _step_inputs(cols, c0 + k * T + s, length, s_ul, s_tl, s_bl, d_mask, n_mask, bias,
                                           HAS_BIAS, SOFTPLUS)
                h = tl.exp2(dl[None, :] * A2) * h + (dl * u)[None, :] * B[:, None]
        tl.debug_barrier()
        for j in range(0, n_tiles):
            t0 = c0 + (n_tiles - 1 - j) * T
            # the states before each of the tile's steps, first step first
            hs = (tl.load(ws_base + (dn_block + (n_tiles - 1 - j) * (BLOCK_D * BLOCK_N))),)
            for s in tl.static_range(0, T - 1):
                u, x, dl, B = _step_inputs(cols, t0 + s, length, s_ul, s_tl, s_bl, d_mask, n_mask, bias, HAS_BIAS,
                                           SOFTPLUS)
                hs = hs + (tl.exp2(dl[None, :] * A2) * hs[s] + (dl * u)[None, :] * B[:, None],)
            # g reaches step t from step t + 1 through exp(dl_{t+1} A), first from the step after the tile
            _, x, dl, B = _step_inputs(cols, t0 + T, length, s_ul, s_tl, s_bl, d_mask, n_mask, bias, HAS_BIAS,
                                       SOFTPLUS)
            a_after = tl.exp2(dl[None, :] * A2)
            for s in tl.static_range(T - 1, -1, -1):
                t = t0 + s
                live = t < length
                # reloaded rather than kept from above: the loads hit the cache, registers are scarce
                u, x, dl, B = _step_inputs(cols, t, length, s_ul, s_tl, s_bl, d_mask, n_mask, bias, HAS_BIAS, SOFTPLUS)
                dy = tl.load(dy_base + (dy_cols + t * s_yl), mask=d_mask & live, other=0.0).to(tl.float32)
                C = tl.load(C_base + (C_rows + t * s_cl), mask=n_mask & live, other=0.0).to(tl.float32)
                g = C[:, None] * dy[None, :] + a_after * g
                a = tl.exp2(dl[None, :] * A2)
                dlu = dl * u
                ah = a * hs[s]                                          # exp(dl_t A) h_{t-1}
                dC = tl.sum((ah + dlu[None, :] * B[:, None]) * dy[None, :], axis=1)
                dB = tl.sum(g * dlu[None, :], axis=1)
                if PARTIAL:
                    tl.store(dB_ptr + bc_base + (bc_rows + t), dB, mask=n_mask & live)
                    tl.store(dC_ptr + bc_base + (bc_rows + t), dC, mask=n_mask & live)
                else:
                    tl.atomic_add(dB_ptr + bc_base + (bc_rows + t), dB, mask=n_mask & live)
                    tl.atomic_add(dC_ptr + bc_base + (bc_rows + t), dC, mask=n_mask & live)
                gah = g * ah
                dA_acc += gah * dl[None, :]
                gB = tl.sum(g * B[:, None], axis=0)
                ddl = tl.sum(gah * A, axis=0) + gB * u
                du = gB * dl
                if HAS_D:
                    du += Dskip * dy
                    dD_acc += dy * u
                if SOFTPLUS:
                    ddl = tl.where(x > 20.0, ddl, ddl / (1.0 + tl.exp(-x)))
                ddl = tl.where(live, ddl, 0.0)
                dbias_acc += ddl
                tl.store(du_ptr + out_base + (out_cols + t), du.to(du_ptr.dtype.element_ty), mask=d_mask & live)
                tl.store(ddt_ptr + out_base + (out_cols + t), ddl.to(ddt_ptr.dtype.element_ty), mask=d_mask & live)
                a_after = a
        tl.debug_barrier()
    _store_param_grads(dA_ptr, dD_ptr, dbias_ptr, dA_acc, dD_acc, dbias_acc, pid_0, dim, d, d_mask, n, nd_mask,
                       n_state)
