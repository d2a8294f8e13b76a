"""Triton selective scan (CUDA): forward and backward kernels, launchers, autograd.Function.

Same contract as `medsegmamba.ops.selective_scan_ref`. One program owns BLOCK_D channels of one
group of one batch element, holds their (BLOCK_D, N) state in float32 registers and walks over L;
the group's B_t/C_t (N values) are loaded once per step for all its channels.

Two forward kernels, chosen by `kernel=` or $MEDSEGMAMBA_TRITON_FWD (default "chunked"):
- "seq" takes one step at a time. Each step waits on the last (exp2, FMA, a reduction over N, a
  store), so it is bound by latency: about 0.7 us a step on an H100.
- "chunked" takes T steps at once: it loads (T, channels) and (T, N) tiles, forms dA and dl*u*B
  for all T steps, runs `tl.associative_scan` over time with (a1, b1), (a2, b2) -> (a1 a2,
  a2 b1 + b2), reduces y for the T steps together and carries the last state to the next chunk.
  On an H100 at the paper's size (8 x 1024 channels, N 64, L 1728) it takes 0.51 ms against the
  sequential kernel's 1.21 ms, at the same error (benchmarks/results/2026-11-23-h100-s2/).
Both leave the same checkpoints, so one backward kernel serves both.

Backward memory: the forward pass, when a gradient is needed, stores the state at every CHUNK-th
step (Bt * D * N * ceil(L / CHUNK) float32, 56 MB for Bt=1, D=8192, N=64, L=1728). The backward
pass walks the chunks last to first: it recomputes the chunk's states from its checkpoint into a
workspace (Bt * D * N * CHUNK float32, freed after the call), then runs the adjoint recurrence
g_t = C_t dy_t + exp(dl_{t+1} A) g_{t+1} backwards through the chunk. Gradients of B and C (sums
over a group's channels) are accumulated with float32 atomics; those of A, D and delta_bias per
batch element, then summed.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

LOG2E = 1.4426950408889634
CHUNK = 64
FWD_KERNELS = ("seq", "chunked")
FWD_ENV_VAR = "MEDSEGMAMBA_TRITON_FWD"


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
    bias = tl.zeros((BLOCK_D,), dtype=tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + d, mask=d_mask, other=0.0).to(tl.float32)
    Dskip = tl.zeros((BLOCK_D,), dtype=tl.float32)
    if HAS_D:
        Dskip = tl.load(Dskip_ptr + d, mask=d_mask, other=0.0).to(tl.float32)
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
def _load_chunk(u_tile, dt_tile, B_tile, C_tile, s_ul, s_tl, s_bl, s_cl, t0, s, length, d_mask, n_mask, bias,
                HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr):
    """u, delta (T, BLOCK_D) and B, C (T, BLOCK_N) of steps t0 .. t0 + T - 1, in float32.

    Steps past the end get delta = 0, so dA = 1 and delta*u*B = 0: they leave the state unchanged.
    Converting here, in the layout of the loads, keeps Triton from moving the conversion (and
    the softplus) after the layout change, where every warp would redo it on more elements.
    """
    live = (t0 + s < length)[:, None]
    u = tl.load(u_tile + t0 * s_ul, mask=live & d_mask[None, :], other=0.0).to(tl.float32)
    dt = tl.load(dt_tile + t0 * s_tl, mask=live & d_mask[None, :], other=0.0)
    B = tl.load(B_tile + t0 * s_bl, mask=live & n_mask[None, :], other=0.0).to(tl.float32)
    C = tl.load(C_tile + t0 * s_cl, mask=live & n_mask[None, :], other=0.0).to(tl.float32)
    _, dl = _delta(dt, bias[None, :], HAS_BIAS, SOFTPLUS)
    return u, tl.where(live, dl, 0.0), B, C


@triton.jit
def _scan_fwd_chunked_kernel(
    u_ptr, dt_ptr, A_ptr, B_ptr, C_ptr, Dskip_ptr, bias_ptr, y_ptr, ckpt_ptr,
    length, groups, dim_group, n_state,
    s_ub, s_ud, s_ul, s_tb, s_td, s_tl, s_ad, s_an,
    s_bb, s_bg, s_bn, s_bl, s_cb, s_cg, s_cn, s_cl, s_yb, s_yd, s_yl,
    HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr, STORE_CKPT: tl.constexpr,
    CHUNK: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, T: tl.constexpr,
    CKPT_BLOCK_D: tl.constexpr,
):
    pid_b, pid_g, pid_c = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    d_loc = pid_c * BLOCK_D + tl.arange(0, BLOCK_D)
    d_mask = d_loc < dim_group
    d = pid_g * dim_group + d_loc
    n = tl.arange(0, BLOCK_N)
    n_mask = n < n_state
    nd_mask = n_mask[:, None] & d_mask[None, :]
    A2 = tl.load(A_ptr + n[:, None] * s_an + d[None, :] * s_ad, mask=nd_mask, other=0.0).to(tl.float32)
    A2 = A2 * 1.4426950408889634                                        # (BLOCK_N, BLOCK_D)
    bias = tl.zeros((BLOCK_D,), dtype=tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + d, mask=d_mask, other=0.0).to(tl.float32)
    Dskip = tl.zeros((BLOCK_D,), dtype=tl.float32)
    if HAS_D:
        Dskip = tl.load(Dskip_ptr + d, mask=d_mask, other=0.0).to(tl.float32)
    b64 = pid_b.to(tl.int64)
    s = tl.arange(0, T)
    # Tiles are (T, channels) and (T, states), time first: in the (T, BLOCK_N, BLOCK_D) tensors
    # below Triton then spreads channels (and states) over lanes and keeps the T steps of each
    # in one thread's registers, so the scan runs within threads, without shuffles.
    u_tile = u_ptr + b64 * s_ub + s[:, None] * s_ul + d[None, :] * s_ud
    dt_tile = dt_ptr + b64 * s_tb + s[:, None] * s_tl + d[None, :] * s_td
    y_tile = y_ptr + b64 * s_yb + s[:, None] * s_yl + d[None, :] * s_yd
    B_tile = B_ptr + b64 * s_bb + pid_g * s_bg + s[:, None] * s_bl + n[None, :] * s_bn
    C_tile = C_ptr + b64 * s_cb + pid_g * s_cg + s[:, None] * s_cl + n[None, :] * s_cn
    # The checkpoints go where the backward kernel, whose channel block is CKPT_BLOCK_D, reads them,
    # so this kernel's BLOCK_D is free to follow its own register budget.
    ck_prog = (pid_b * groups + pid_g) * tl.cdiv(dim_group, CKPT_BLOCK_D) + d_loc // CKPT_BLOCK_D
    ck_col = ck_prog.to(tl.int64) * (tl.cdiv(length, CHUNK) * CKPT_BLOCK_D * BLOCK_N) + (d_loc % CKPT_BLOCK_D) * BLOCK_N
    ck_tile = ckpt_ptr + n[None, :, None] + ck_col[None, None, :]

    # kept 3D, (1, BLOCK_N, BLOCK_D), so that it stays in the layout of the chunk's tensors
    h = tl.zeros((1, BLOCK_N, BLOCK_D), dtype=tl.float32)
    # the next chunk is loaded (and its delta computed) before this chunk's math, so the load
    # latency hides behind it
    u_n, dl_n, B_n, C_n = _load_chunk(u_tile, dt_tile, B_tile, C_tile, s_ul, s_tl, s_bl, s_cl, 0, s, length,
                                      d_mask, n_mask, bias, HAS_BIAS, SOFTPLUS)
    for t0 in range(0, length, T):
        if STORE_CKPT:
            if t0 % CHUNK == 0:  # T divides CHUNK, so every checkpoint falls on a chunk start
                tl.store(ck_tile + (t0 // CHUNK) * (CKPT_BLOCK_D * BLOCK_N), h, mask=nd_mask[None, :, :])
        u, dl, B, C = u_n, dl_n, B_n, C_n
        u_n, dl_n, B_n, C_n = _load_chunk(u_tile, dt_tile, B_tile, C_tile, s_ul, s_tl, s_bl, s_cl, t0 + T, s, length,
                                          d_mask, n_mask, bias, HAS_BIAS, SOFTPLUS)
        dA = tl.exp2(dl[:, None, :] * A2[None, :, :])                   # (T, BLOCK_N, BLOCK_D)
        dBu = (dl * u)[:, None, :] * B[:, :, None]
        # The carried state enters as part of the first step, so the scan yields the states
        # themselves and its running products of dA are dead code; -0.0 elsewhere adds nothing.
        dBu += tl.where((s == 0)[:, None, None], dA * h, -0.0)
        _, hs = tl.associative_scan((dA, dBu), 0, _combine)
        y = tl.sum(hs * C[:, :, None], axis=1)                          # (T, BLOCK_D)
        if HAS_D:
            y += Dskip[None, :] * u
        tl.store(y_tile + t0 * s_yl, y.to(y_ptr.dtype.element_ty), mask=(t0 + s < length)[:, None] & d_mask[None, :])
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
    bias = tl.zeros((BLOCK_D,), dtype=tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + d, mask=d_mask, other=0.0).to(tl.float32)
    Dskip = tl.zeros((BLOCK_D,), dtype=tl.float32)
    if HAS_D:
        Dskip = tl.load(Dskip_ptr + d, mask=d_mask, other=0.0).to(tl.float32)
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


def _interpreting():
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _config(dim_group, n_state, block_d=None, num_warps=None, elems_per_warp=256):
    """(BLOCK_D, BLOCK_N, num_warps): about 1024 state elements per program by default.

    The forward kernel runs with 512 state elements per warp: on an H100 (sweep in
    benchmarks/results/2026-11-23-h100/scan.md) 16 channels x 64 states took 1.22 ms with 2 warps
    against 2.34 ms with 4. The backward keeps 256 until it is measured.
    """
    block_n = triton.next_power_of_2(n_state)
    if block_d is None:
        block_d = min(triton.next_power_of_2(dim_group), max(1, 1024 // block_n))
    if block_d < 1 or block_d & (block_d - 1):
        raise ValueError(f"selective_scan_triton: block_d must be a power of two, got {block_d}")
    if num_warps is None:
        num_warps = max(1, min(8, block_d * block_n // elems_per_warp))
    return block_d, block_n, num_warps


def _check_device(*tensors):
    device = tensors[0].device
    if device.type != "cuda" and not _interpreting():
        raise RuntimeError(f"selective_scan_triton: inputs must be on CUDA, got {device}")
    for t in tensors:
        if t is not None and t.device != device:
            raise ValueError(f"selective_scan_triton: all inputs must be on {device}, got one on {t.device}")


def _fwd_kernel_name(kernel):
    """The forward kernel to run: the argument, else $MEDSEGMAMBA_TRITON_FWD, else "chunked"."""
    source = "kernel"
    if kernel is None:
        kernel, source = os.environ.get(FWD_ENV_VAR, "chunked") or "chunked", f"${FWD_ENV_VAR}"
    if kernel not in FWD_KERNELS:
        raise ValueError(f"selective_scan_triton: {source} must be one of {', '.join(FWD_KERNELS)}, got {kernel!r}")
    return kernel


def _chunked_config(dim_group, n_state, block_d=None, num_warps=None, chunk_t=None):
    """(BLOCK_D, BLOCK_N, T, num_warps) of the chunked forward kernel.

    Default: 16 channels, 2 warps splitting the states, and T steps such that each thread holds
    64 elements of the (T, BLOCK_N, BLOCK_D) tensors (T=4 for N=64): the fastest of the sweep on
    an H100 (0.51 ms in fp32 at the paper's size; 32 channels / 4 warps, 0.71 ms; 32 / 2 warps,
    0.58 ms; benchmarks/results/2026-11-23-h100-s2/scan.md).
    T must divide CHUNK, so that every checkpoint falls on the start of a chunk of T steps.
    """
    block_n = triton.next_power_of_2(n_state)
    if block_d is None:
        block_d = min(triton.next_power_of_2(dim_group), 16)
    if block_d < 1 or block_d & (block_d - 1):
        raise ValueError(f"selective_scan_triton: block_d must be a power of two, got {block_d}")
    if num_warps is None:
        num_warps = 2
    if chunk_t is None:
        chunk_t = max(1, min(CHUNK, 64 * 32 * num_warps // (block_d * block_n)))
    if chunk_t < 1 or chunk_t & (chunk_t - 1) or CHUNK % chunk_t:
        raise ValueError(f"selective_scan_triton: chunk_t must be a power of two dividing {CHUNK}, got {chunk_t}")
    return block_d, block_n, chunk_t, num_warps


def _scan_fwd(u, delta, A, B, C, D, delta_bias, softplus, store_ckpt, block_d=None, num_warps=None,
              kernel="seq", chunk_t=None):
    """Launch a forward kernel ("seq" or "chunked").

    Returns y (Bt, D, L) in u's dtype, the checkpoints (or None) and the backward's launch
    configuration (block_d, num_warps or None), which the checkpoint layout depends on.
    """
    batch, dim, length = u.shape
    groups, n_state = B.shape[1], A.shape[1]
    dim_group = dim // groups
    if kernel == "chunked":
        # the backward keeps its own default channel block: checkpoints are written in its layout
        ckpt_block_d, block_n, _ = _config(dim_group, n_state)
        block_d, _, chunk_t, num_warps = _chunked_config(dim_group, n_state, block_d, num_warps, chunk_t)
        bwd_cfg = (ckpt_block_d, None)
    else:
        bwd_warps = num_warps
        block_d, block_n, num_warps = _config(dim_group, n_state, block_d, num_warps, 512)
        ckpt_block_d, bwd_cfg = block_d, (block_d, bwd_warps)
    grid = (batch, groups, triton.cdiv(dim_group, block_d))
    ckpt_shape = (batch * groups * triton.cdiv(dim_group, ckpt_block_d), triton.cdiv(length, CHUNK), ckpt_block_d,
                  block_n)
    y = torch.empty((batch, dim, length), device=u.device, dtype=u.dtype)
    ckpt = y
    if store_ckpt:
        # the chunked kernel masks its stores to real channels; a partly used block must still
        # hold finite states for the backward, which reads whole blocks
        padded = kernel == "chunked" and dim_group % ckpt_block_d
        ckpt = (torch.zeros if padded else torch.empty)(ckpt_shape, device=u.device, dtype=torch.float32)
    args = (u, delta, A, B, C, D if D is not None else u, delta_bias if delta_bias is not None else u, y, ckpt,
            length, groups, dim_group, n_state,
            *u.stride(), *delta.stride(), *A.stride(), *B.stride(), *C.stride(), *y.stride())
    flags = dict(HAS_D=D is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=bool(softplus),
                 STORE_CKPT=store_ckpt, CHUNK=CHUNK, BLOCK_D=block_d, BLOCK_N=block_n, num_warps=num_warps)
    if kernel == "chunked":
        _scan_fwd_chunked_kernel[grid](*args, **flags, T=chunk_t, CKPT_BLOCK_D=ckpt_block_d)
    else:
        _scan_fwd_kernel[grid](*args, **flags)
    return y, (ckpt if store_ckpt else None), bwd_cfg


def _scan_bwd(dy, u, delta, A, B, C, D, delta_bias, softplus, ckpt, block_d, num_warps):
    """Launch the backward kernel. Returns fp32 (du, ddelta, dA, dB, dC, dD, dbias)-ready tensors."""
    batch, dim, length = u.shape
    groups, n_state = B.shape[1], A.shape[1]
    block_d, block_n, num_warps = _config(dim // groups, n_state, block_d, num_warps)
    grid = (batch, groups, triton.cdiv(dim // groups, block_d))
    n_chunks = triton.cdiv(length, CHUNK)
    if ckpt.shape != (grid[0] * grid[1] * grid[2], n_chunks, block_d, block_n):
        raise RuntimeError(f"selective_scan_triton: checkpoint shape {tuple(ckpt.shape)} does not fit the grid")
    dev, f32 = u.device, torch.float32
    ws = torch.empty((ckpt.shape[0], CHUNK, block_d, block_n), device=dev, dtype=f32)
    du = torch.empty((batch, dim, length), device=dev, dtype=u.dtype)
    ddelta = torch.empty((batch, dim, length), device=dev, dtype=delta.dtype)
    dA = torch.empty((batch, dim, n_state), device=dev, dtype=f32)
    dB = torch.zeros((batch, groups, n_state, length), device=dev, dtype=f32)
    dC = torch.zeros((batch, groups, n_state, length), device=dev, dtype=f32)
    dD = torch.empty((batch, dim), device=dev, dtype=f32)
    dbias = torch.empty((batch, dim), device=dev, dtype=f32)
    _scan_bwd_kernel[grid](
        u, delta, A, B, C, D if D is not None else u, delta_bias if delta_bias is not None else u, dy, ckpt, ws,
        du, ddelta, dA, dB, dC, dD, dbias,
        length, n_chunks, groups, dim, dim // groups, n_state,
        *u.stride(), *delta.stride(), *A.stride(), *B.stride(), *C.stride(), *dy.stride(),
        HAS_D=D is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=bool(softplus),
        CHUNK=CHUNK, BLOCK_D=block_d, BLOCK_N=block_n, num_warps=num_warps)
    return du, ddelta, dA.sum(0), dB, dC, dD.sum(0), dbias.sum(0)


class _SelectiveScanTriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, delta_bias, softplus, kernel, block_d, num_warps, chunk_t):
        needs_grad = any(t is not None and t.requires_grad for t in (u, delta, A, B, C, D, delta_bias))
        y, ckpt, bwd_cfg = _scan_fwd(u, delta, A, B, C, D, delta_bias, softplus, needs_grad, block_d, num_warps,
                                     kernel, chunk_t)
        if needs_grad:
            ctx.save_for_backward(u, delta, A, B, C, D, delta_bias, ckpt)
            # the checkpoint layout fixes the backward's channel block; it picks its own warps
            # unless the caller fixed them for the sequential forward
            ctx.softplus, ctx.cfg = softplus, bwd_cfg
        return y

    @staticmethod
    def backward(ctx, dy):
        u, delta, A, B, C, D, delta_bias, ckpt = ctx.saved_tensors
        du, ddelta, dA, dB, dC, dD, dbias = _scan_bwd(dy, u, delta, A, B, C, D, delta_bias, ctx.softplus,
                                                     ckpt, *ctx.cfg)
        return (du, ddelta, dA.to(A.dtype), dB.to(B.dtype), dC.to(C.dtype),
                None if D is None else dD.to(D.dtype),
                None if delta_bias is None else dbias.to(delta_bias.dtype), None, None, None, None, None)


def selective_scan_triton(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True, *,
                          kernel=None, block_d=None, num_warps=None, chunk_t=None):
    """Triton selective scan on CUDA; y (Bt, D, L) in u's dtype. Shapes as `selective_scan_ref`.

    kernel picks the forward: "seq" (one step at a time) or "chunked" (T steps at once through an
    associative scan); None reads $MEDSEGMAMBA_TRITON_FWD, default "chunked". Both leave the same
    checkpoints, so the backward is the same. block_d / num_warps / chunk_t (T, chunked only)
    override the forward's launch configuration (benchmarks only).
    """
    from ..selective_scan import check_scan_args

    check_scan_args(u, delta, A, B, C, D, delta_bias)
    _check_device(u, delta, A, B, C, D, delta_bias)
    kernel = _fwd_kernel_name(kernel)
    if chunk_t is not None and kernel != "chunked":
        raise ValueError(f"selective_scan_triton: chunk_t is for kernel='chunked', got kernel={kernel!r}")
    return _SelectiveScanTriton.apply(u, delta, A, B, C, D, delta_bias, delta_softplus, kernel, block_d, num_warps,
                                      chunk_t)
