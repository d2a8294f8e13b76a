"""Triton selective scan (CUDA): launchers and the autograd.Function; the kernels are in scan_kernels.py.

Same contract as `medsegmamba.ops.selective_scan_ref`. One program owns BLOCK_D channels of one
group of one batch element, holds their (BLOCK_D, N) state in float32 registers and walks over L;
the group's B_t/C_t (N values) are loaded once per step for all its channels.

Two forward kernels, chosen by `kernel=` or $MEDSEGMAMBA_TRITON_FWD (default "chunked"):
- "seq" takes one step at a time. Each step waits on the last (exp2, FMA, a reduction over N, a
  store), so it is bound by latency: about 0.7 us a step on an H100.
- "chunked" takes T steps at once: it loads (T, channels) and (T, N) tiles, forms dA and dl*u*B
  for all T steps, runs `tl.associative_scan` over time with (a1, b1), (a2, b2) -> (a1 a2,
  a2 b1 + b2), reduces y for the T steps together and carries the last state to the next chunk.
  On an H100 at the paper's size (8 x 1024 channels, N 64, L 1728) it takes 0.475 ms (T = 8; 0.51
  ms at T = 4) against the sequential kernel's 1.21 ms, at the same error
  (benchmarks/results/2026-11-23-h100-s2/, 2026-11-24-h100-s6/).
Both leave the same checkpoints, which both backward kernels read.

Backward memory: the forward pass, when a gradient is needed, stores the state at every CHUNK-th
step (Bt * D * N * ceil(L / CHUNK) float32, 56 MB for Bt=1, D=8192, N=64, L=1728). The backward
kernels, chosen by `bwd_kernel=` or $MEDSEGMAMBA_TRITON_BWD (default "auto", below), all walk the
chunks last to first and run the adjoint recurrence g_t = C_t dy_t + exp(dl_{t+1} A) g_{t+1}:
- "seq" recomputes the chunk's states from its checkpoint into a workspace (Bt * D * N * CHUNK
  float32, freed after the call), then walks the chunk back one step at a time, with float32
  atomics for the gradients of B and C (sums over a group's channels) at every step.
- "chunked" takes T steps at once. It runs the forward's associative scan over the chunk, keeping
  only the state at the start of each T-step tile (a workspace CHUNK / T times smaller), then, tile
  by tile backwards, recomputes the tile's states with the same scan and g with a scan over the
  tile read last step first, carrying g across tiles; dB and dC of the T steps are summed over the
  program's channels and added with one atomic per tile.
  Each tile runs one of two bodies of the same math ($MEDSEGMAMBA_TRITON_BWD_VARIANT, `_bwd_variant`):
  "scan" (default) runs the scans above on (T, N, D) tensors; "steps" unrolls the tile's T steps
  on (N, D) states, with far fewer registers but twice the time on an H100 (session 9).
- "parallel" cuts time into segments of whole checkpoint chunks and runs the chunked backward on
  every segment at once. The adjoint is linear in what enters a segment from the next one, so two
  small passes come first: each segment's adjoint at its first step from a zero start, with the
  sum of its steps' deltas (pass 1, all segments at once), then those chained last to first into
  what enters each segment (pass 2, L / segment steps per program). Each segment has its own
  workspace, so the count is capped (`_segments`: about 4096 programs, at most 256 MiB).
- "gluon" (scan_gluon.scan_bwd_kernel, CUDA only) has each thread walk its own states one step at
  a time, in an explicit layout; it stages inputs, per-step sums and outputs in shared memory and
  keeps its recomputed states there (scan_gluon.py says how). Twice as fast as "chunked" at the
  paper's size (benchmarks/results/2026-12-07-h100-s19/).
- "auto" (the default) takes "gluon" on a CUDA GPU where its grid gives each multiprocessor 4
  warps (`_auto_gluon_bwd`), else "parallel" when the chunked one's grid has at most one program
  per multiprocessor, else "chunked" (`_auto_bwd_kernel`, benchmarks/results/2026-12-06-h100-s8/).
delta's bias and softplus are applied in PyTorch before any backward kernel and their gradient
after it (`_scan_bwd`): the kernels run on the step dl itself. Inside the chunked backward every
thread holding a state of a channel had recomputed them, half of its loop (session 16).
Gradients of A and D are accumulated per batch element (and segment), then summed.
"""

from __future__ import annotations

import functools
import os
from typing import Optional

import torch
import triton

# The launchers below look the kernels up in this module's namespace (the interpreter tests
# replace them with spies here).
from .interpreter import interpreting
from .scan_kernels import (_scan_bwd_carry_kernel, _scan_bwd_chunked_kernel, _scan_bwd_kernel, _scan_bwd_local_kernel,
                           _scan_bwd_steps_kernel, _scan_fwd_chunked_kernel, _scan_fwd_kernel)

CHUNK = 64
FWD_KERNELS = ("seq", "chunked")
FWD_ENV_VAR = "MEDSEGMAMBA_TRITON_FWD"
BWD_KERNELS = ("seq", "chunked", "parallel", "auto", "gluon")
BWD_ENV_VAR = "MEDSEGMAMBA_TRITON_BWD"
BWD_VARIANTS = ("steps", "scan")
BWD_VARIANT_ENV_VAR = "MEDSEGMAMBA_TRITON_BWD_VARIANT"
WALK_KERNELS = ("auto", "chunked", "gluon")
WALK_ENV_VAR = "MEDSEGMAMBA_TRITON_WALK"


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
    if device.type != "cuda" and not interpreting():
        raise RuntimeError(f"selective_scan_triton: inputs must be on CUDA, got {device}")
    for t in tensors:
        if t is not None and t.device != device:
            raise ValueError(f"selective_scan_triton: all inputs must be on {device}, got one on {t.device}")


def _kernel_name(kernel, arg, env_var, choices, default):
    source = arg
    if kernel is None:
        kernel, source = os.environ.get(env_var, default) or default, f"${env_var}"
    if kernel not in choices:
        raise ValueError(f"selective_scan_triton: {source} must be one of {', '.join(choices)}, got {kernel!r}")
    return kernel


def _fwd_kernel_name(kernel):
    """The forward kernel to run: the argument, else $MEDSEGMAMBA_TRITON_FWD, else "chunked"."""
    return _kernel_name(kernel, "kernel", FWD_ENV_VAR, FWD_KERNELS, "chunked")


def _walk_kernel_name(kernel):
    """The kernel that walks SS3D's paths (`selective_scan_paths_triton`): the argument, else
    $MEDSEGMAMBA_TRITON_WALK, else "auto" (`_auto_walk_kernel`). "chunked" is
    `_scan_fwd_chunked_kernel`, "gluon" scan_gluon.scan_paths_fwd_kernel."""
    return _kernel_name(kernel, "kernel", WALK_ENV_VAR, WALK_KERNELS, "auto")


@functools.lru_cache(maxsize=None)
def _gluon_available() -> bool:
    try:
        from . import scan_gluon  # noqa: F401  (Triton without Gluon, before 3.5, fails here)
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=None)
def _multiprocessors(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def _device_multiprocessors(device) -> int:
    """The multiprocessors of a CUDA device (its index, else the current one's), read once."""
    device = torch.device(device)
    return _multiprocessors(device.index if device.index is not None else torch.cuda.current_device())


def _auto_walk_kernel(batch, groups, dim_group, n_state, device, per_multiprocessor=1):
    """"gluon" when its grid gives every multiprocessor `per_multiprocessor` programs, else "chunked".

    Inference takes 1: on an H100 at the paper's size (8 x 1024 channels, N 64, 12^3) the Gluon
    kernel took 2.84 against 4.27 ms at batch 8 and 0.89 against 1.12 ms at batch 2, where its grid
    has 256 programs for 132 multiprocessors; at batch 1 (128 programs) 0.61-0.68 against 0.59 ms
    (benchmarks/results/2026-12-07-h100-s18/). Training, where the Gluon walk also leaves the
    backward's checkpoints, takes `_TRAIN_WALK_PROGRAMS`."""
    if interpreting() or device.type != "cuda" or not _gluon_available():  # Gluon has no interpreter
        return "chunked"
    spt_n, tpw_n, spt_d, _, warps = _gluon_walk_config(dim_group, n_state)
    programs = batch * groups * triton.cdiv(dim_group, spt_d * (32 // tpw_n) * warps)
    return "gluon" if programs >= per_multiprocessor * _device_multiprocessors(device) else "chunked"


# Programs a multiprocessor for training's "auto" to take the Gluon walk: the paper network's eager
# training step on an H100 took 52.7 ms a patch with it against 54.5 with the chunked one at batch 8
# (1,024 programs; benchmarks/results/2026-12-07-h100-s22/), 61.8 against 60.2 at batch 2 (256
# programs; benchmarks/results/2026-12-07-h100-s21/).
_TRAIN_WALK_PROGRAMS = 4


def _bwd_kernel_name(kernel):
    """The backward kernel to run: the argument, else $MEDSEGMAMBA_TRITON_BWD, else "auto"
    ("gluon" where `_auto_gluon_bwd` takes it, else `_auto_bwd_kernel`: "chunked" or "parallel" by
    the size of its grid).

    On an H100 the chunked backward matched the sequential one's error against float64 and was
    faster at both sizes measured: 11.2 against 15.7 ms forward+backward at the paper's (best
    launch, now its default) and 3.8 against 6.0 ms at the default model's
    (benchmarks/results/2026-11-23-h100-s3/).
    """
    return _kernel_name(kernel, "bwd_kernel", BWD_ENV_VAR, BWD_KERNELS, "auto")


_INTERPRETER_SMS = 132  # multiprocessors assumed under Triton's interpreter: an H100's


def _auto_gluon_bwd(batch, groups, dim_group, n_state, device) -> bool:
    """Whether "auto" runs scan_gluon.scan_bwd_kernel: on a CUDA GPU (Gluon has no interpreter),
    where its grid gives each multiprocessor at least 4 warps. Measured on an H100, one scan's
    forward + backward, fp32 (benchmarks/results/2026-12-07-h100-s19/): the paper's size at batch 1
    (2,048 warps) 3.4 against 7.1 ms (chunked); the default model's at batch 16 (1,024) 3.4
    against 5.0 ms, at batch 4 (256) 1.9 against 1.5 ms (the parallel backward, kept there)."""
    if interpreting() or torch.device(device).type != "cuda" or not _gluon_available():
        return False
    warps, block_d = _gluon_bwd_config(n_state)[3:5]
    return batch * groups * triton.cdiv(dim_group, block_d) * warps >= 4 * _device_multiprocessors(device)


def _auto_bwd_kernel(programs: int, device) -> str:
    """"parallel" when the chunked backward's grid has at most one program per multiprocessor, else
    "chunked". ptxas gives the chunked backward 255 registers per thread (sm_90, session 8), so at
    most two of its programs share a multiprocessor; with one or fewer, most of the chip idles
    while each program walks all of L, and the parallel backward fills it with segments. Measured
    on an H100 (benchmarks/results/2026-12-06-h100-s8/), one scan's forward + backward, fp32: the
    default model's size at batch 4 (64 programs) 2.76 -> 1.32 ms; at batch 16 (256 programs)
    4.51 against 4.75 ms and the paper's at batch 1 (512) 9.13 against 9.92 ms, where the chunked
    one stays."""
    if torch.device(device).type == "cuda":
        sms = _device_multiprocessors(device)
    else:
        sms = _INTERPRETER_SMS
    return "parallel" if programs <= sms else "chunked"


def _chunked_config(dim_group, n_state, block_d=None, num_warps=None, chunk_t=None):
    """(BLOCK_D, BLOCK_N, T, num_warps) of the chunked forward kernel.

    Default: 16 channels, 2 warps splitting the states, and T steps such that each thread holds
    128 elements of the (T, BLOCK_N, BLOCK_D) tensors at N >= 64 (T=8 at the paper's N=64) and 64
    at a smaller N. On an H100 at the paper's size (benchmarks/results/2026-11-24-h100-s6/scan_sweep.md)
    T=8 took 0.474 ms in fp32 against 0.516 ms at T=4, the earlier default (session 2's sweep,
    which had not tried T=8 with 16 channels and 2 warps); 8 channels / T 8 / 1 warp took 0.478 ms.
    The smaller N of the default model (16) keeps 64 elements per thread (T=16): not measured at 128.
    T must divide CHUNK, so that every checkpoint falls on the start of a chunk of T steps.
    """
    block_n = triton.next_power_of_2(n_state)
    if block_d is None:
        block_d = min(triton.next_power_of_2(dim_group), 16)
    if block_d < 1 or block_d & (block_d - 1):
        raise ValueError(f"selective_scan_triton: block_d must be a power of two, got {block_d}")
    if num_warps is None:
        num_warps = 2
    chunk_t = _steps_per_tile(chunk_t, 128 if block_n >= 64 else 64, num_warps, block_d, block_n, "chunk_t")
    return block_d, block_n, chunk_t, num_warps


def _bwd_variant() -> str:
    """How the chunked and parallel backward run a tile of T steps, from $MEDSEGMAMBA_TRITON_BWD_VARIANT:
    "scan" (the default: _scan_bwd_chunked_kernel, associative scans over (T, N, D) tiles) or "steps"
    (_scan_bwd_steps_kernel, the tile's steps unrolled on (N, D) states). Same math. Built for sm_90
    as launched, "steps" at 8 warps fits 128 registers without spills (16 warps per multiprocessor)
    where "scan" takes 255 at 4 warps (8 warps per multiprocessor), yet on an H100 "steps" took twice
    the time: 18.7 against 9.1 ms for one paper-size scan's forward + backward, 6.2 against 4.5 ms for
    the default model's at batch 16 (session 9, benchmarks/results/2026-12-06-h100-s9/). Occupancy
    is not what bounds this backward; "steps" stays for measuring."""
    return _kernel_name(None, "variant", BWD_VARIANT_ENV_VAR, BWD_VARIANTS, "scan")


_STEPS_MAXNREG = 128  # the steps variant's register cap outside SEG_PAR, where it does not spill


def _bwd_chunked_config(n_state, block_d, num_warps=None, chunk_t=None, variant="scan"):
    """(T, num_warps) of the chunked backward; its channel block is the checkpoints' block_d.

    Default: 4 warps and T such that each thread holds 16 elements of a (T, BLOCK_N, BLOCK_D)
    tensor (T=2 for 16 channels x N=64): the fastest of the sweep on an H100, 11.2 ms forward +
    backward at the paper's size against 15.7 ms for the sequential backward; 8 warps at the same
    T took 21.8 ms, 8 channels / T 4 / 4 warps 13.4 ms (benchmarks/results/2026-11-23-h100-s3/).
    At the default model's N=16 the same rule gives T=8, which that sweep did not include; its
    neighbours took 2.5 ms (T 4) and 1.7 ms (8 channels, T 8), against 6.0 ms sequential.
    """
    block_n = triton.next_power_of_2(n_state)
    if variant == "steps":  # T=2 on 8 warps: its states take 128 registers without spills (_bwd_variant)
        num_warps = 8 if num_warps is None else num_warps
        return _steps_per_tile(2 if chunk_t is None else chunk_t, 0, num_warps, block_d, block_n, "bwd chunk_t"), num_warps
    if num_warps is None:
        num_warps = 4
    return _steps_per_tile(chunk_t, 16, num_warps, block_d, block_n, "bwd chunk_t"), num_warps


def _steps_per_tile(chunk_t, elems_per_thread, num_warps, block_d, block_n, name):
    """T of a chunked kernel: `chunk_t` checked, or by default the T at which each thread holds
    `elems_per_thread` elements of a (T, BLOCK_N, BLOCK_D) tensor. T must divide CHUNK, so that
    every checkpoint falls on the start of a tile."""
    if chunk_t is None:
        chunk_t = max(1, min(CHUNK, elems_per_thread * 32 * num_warps // (block_d * block_n)))
    if chunk_t < 1 or chunk_t & (chunk_t - 1) or CHUNK % chunk_t:
        raise ValueError(f"selective_scan_triton: {name} must be a power of two dividing {CHUNK}, got {chunk_t}")
    return chunk_t


def _scan_fwd(u, delta, A, B, C, D, delta_bias, softplus, store_ckpt, block_d=None, num_warps=None,
              kernel="seq", chunk_t=None, ckpt_block_d=None):
    """Launch a forward kernel ("seq" or "chunked").

    Returns y (Bt, D, L) in u's dtype, the checkpoints (or None) and the backward's launch
    configuration (block_d, num_warps or None), which the checkpoint layout depends on.
    ckpt_block_d fixes the backward's channel block (benchmarks of the backward); the sequential
    forward then runs with it too, since it writes checkpoints in its own layout.
    """
    batch, dim, length = u.shape
    groups, n_state = B.shape[1], A.shape[1]
    dim_group = dim // groups
    if kernel == "chunked":
        # the backward keeps its own default channel block: checkpoints are written in its layout
        ckpt_block_d, block_n, _ = _config(dim_group, n_state, ckpt_block_d)
        block_d, _, chunk_t, num_warps = _chunked_config(dim_group, n_state, block_d, num_warps, chunk_t)
        bwd_cfg = (ckpt_block_d, None)
    else:
        if ckpt_block_d is not None and block_d not in (None, ckpt_block_d):
            raise ValueError(f"selective_scan_triton: kernel='seq' writes checkpoints with its own block_d, "
                             f"got block_d={block_d} and a backward block_d={ckpt_block_d}")
        block_d = block_d if block_d is not None else ckpt_block_d
        bwd_warps = num_warps
        block_d, block_n, num_warps = _config(dim_group, n_state, block_d, num_warps, 512)
        ckpt_block_d, bwd_cfg = block_d, (block_d, bwd_warps)
    grid = (batch, groups, triton.cdiv(dim_group, block_d))
    ckpt_shape = (batch * groups * triton.cdiv(dim_group, ckpt_block_d), triton.cdiv(length, CHUNK), ckpt_block_d,
                  block_n)
    y = torch.empty((batch, dim, length), device=u.device, dtype=u.dtype)
    ckpt = y
    if store_ckpt:
        # the chunked kernel masks its stores to real channels and states; a partly used block
        # (channels past dim_group, or states past n_state when N is not a power of two) must
        # still hold finite states for the backward, which reads whole blocks: there a NaN left in
        # the memory multiplies the padded state's zero A into the sum over states of ddelta
        padded = kernel == "chunked" and (dim_group % ckpt_block_d or n_state != block_n)
        ckpt = (torch.zeros if padded else torch.empty)(ckpt_shape, device=u.device, dtype=torch.float32)
    params = (A, B, C, D if D is not None else u, delta_bias if delta_bias is not None else u)
    flags = dict(HAS_D=D is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=bool(softplus),
                 STORE_CKPT=store_ckpt, CHUNK=CHUNK, BLOCK_D=block_d, BLOCK_N=block_n, num_warps=num_warps)
    if kernel == "chunked":
        # (batch, group, channel in group, step) strides: splitting D into groups is always a view
        split = lambda t: t.unflatten(1, (groups, dim_group)).stride()  # noqa: E731
        _scan_fwd_chunked_kernel[grid](u, delta, *params, y, ckpt, u, length, groups, dim_group, n_state,
                                       *split(u), *split(delta), *A.stride(), *B.stride(), *C.stride(), *split(y),
                                       **flags, T=chunk_t, CKPT_BLOCK_D=ckpt_block_d, PATHS=False)
    else:
        _scan_fwd_kernel[grid](u, delta, *params, y, ckpt, length, groups, dim_group, n_state,
                               *u.stride(), *delta.stride(), *A.stride(), *B.stride(), *C.stride(), *y.stride(),
                               **flags)
    return y, (ckpt if store_ckpt else None), bwd_cfg


def _scan_bwd(dy, u, delta, A, B, C, D, delta_bias, softplus, ckpt, block_d, num_warps, kernel="seq",
              chunk_t=None, segments=None):
    """The backward of one scan: (du, ddelta, dA, dB, dC, dD, dbias), fp32 but for du and ddelta.

    delta's bias and softplus are applied here, once per element, and their gradient after the
    kernel: the kernels can apply them, but inside the chunked backward every thread that holds a
    state of a channel recomputed them, half of its loop's instructions (1538 -> 788 per tile at the
    paper's launch as built for an H100, benchmarks/results/2026-12-07-s16/). The kernels then see
    the step dl itself, without bias or softplus.
    """
    x = delta.float() if delta_bias is None else delta.float() + delta_bias.float()[None, :, None]
    dl = torch.nn.functional.softplus(x) if softplus else x
    du, ddl, dA, dB, dC, dD, _ = _launch_bwd(dy, u, dl, A, B, C, D, None, False, ckpt, block_d, num_warps, kernel,
                                             chunk_t, segments)
    ddelta = ddl * torch.sigmoid(x) if softplus else ddl  # d softplus(x) / dx = sigmoid(x)
    dbias = ddelta.sum((0, 2)) if delta_bias is not None else None
    return du, ddelta.to(delta.dtype), dA, dB, dC, dD, dbias


def _launch_bwd(dy, u, delta, A, B, C, D, delta_bias, softplus, ckpt, block_d, num_warps, kernel="seq",
                chunk_t=None, segments=None):
    """Launch a backward kernel ("seq", "chunked" or "parallel", T = chunk_t steps at once;
    "parallel" cuts time into `segments` runs of whole checkpoint chunks, None: `_segments`' rule).

    Returns fp32 (du, ddelta, dA, dB, dC, dD, dbias)-ready tensors.
    """
    if kernel == "gluon":
        return _launch_bwd_gluon(dy, u, delta, A, B, C, D, delta_bias, softplus, ckpt)
    batch, dim, length = u.shape
    groups, n_state = B.shape[1], A.shape[1]
    if kernel == "auto":
        kernel = _auto_bwd_kernel(ckpt.shape[0], u.device)  # the checkpoints hold a block per program
    par = kernel == "parallel"
    variant = _bwd_variant() if kernel != "seq" else None
    split = 1
    if par or kernel == "chunked":
        block_d, block_n, _ = _config(dim // groups, n_state, block_d)
        if kernel == "chunked" and variant == "scan":
            split = min(_bwd_split(), block_n)
        if split > 1 and (delta_bias is not None or softplus):
            raise ValueError("selective_scan_triton: a backward split over states takes delta without bias or "
                             "softplus (_scan_bwd applies them outside the kernel)")
        # the kernel's own state block: N_SPLIT programs of block_n // split states per channel block
        chunk_t, num_warps = _bwd_chunked_config(block_n // split, block_d, num_warps, chunk_t, variant)
    else:
        block_d, block_n, num_warps = _config(dim // groups, n_state, block_d, num_warps)
    grid = (batch, groups, triton.cdiv(dim // groups, block_d))
    n_chunks = triton.cdiv(length, CHUNK)
    if ckpt.shape != (grid[0] * grid[1] * grid[2], n_chunks, block_d, block_n):
        raise RuntimeError(f"selective_scan_triton: checkpoint shape {tuple(ckpt.shape)} does not fit the grid")
    dev, f32 = u.device, torch.float32
    # the parallel backward runs its segments at once: a workspace, and a row of dA, dD, dbias, per segment
    seg_chunks = n_chunks
    if par:
        programs = ckpt.shape[0]
        ws_bytes = programs * (CHUNK // chunk_t) * block_d * block_n * 4  # one workspace per program
        seg_chunks = triton.cdiv(n_chunks, _segments(segments, n_chunks, programs, ws_bytes))
    rows = triton.cdiv(n_chunks, seg_chunks)
    ws_states = CHUNK if kernel == "seq" else CHUNK // chunk_t
    ws = torch.empty((ckpt.shape[0] * rows * split, ws_states, block_d, block_n // split), device=dev, dtype=f32)
    if split > 1:  # each of a channel block's programs adds its states' part (scan_kernels.py)
        du = torch.zeros((batch, dim, length), device=dev, dtype=f32)
        ddelta = torch.zeros((batch, dim, length), device=dev, dtype=f32)
    else:
        du = torch.empty((batch, dim, length), device=dev, dtype=u.dtype)
        ddelta = torch.empty((batch, dim, length), device=dev, dtype=delta.dtype)
    dA = torch.empty((batch * rows, dim, n_state), device=dev, dtype=f32)
    partial = kernel != "seq" and _bc_sums("partial") == "partial"
    parts = (grid[2],) if partial else ()  # one (B, G, N, L) slice per channel block, summed below
    make = torch.empty if partial else torch.zeros  # partial: every element of every slice is stored
    dB = make(parts + (batch, groups, n_state, length), device=dev, dtype=f32)
    dC = make(parts + (batch, groups, n_state, length), device=dev, dtype=f32)
    dD = torch.empty((batch * rows, dim), device=dev, dtype=f32)
    dbias = torch.empty((batch * rows, dim), device=dev, dtype=f32)
    carry = _segment_carries(dy, delta, A, C, delta_bias, softplus, grid, seg_chunks * CHUNK, rows, block_d,
                             block_n, chunk_t, num_warps) if par else ws
    inputs = (u, delta, A, B, C, D if D is not None else u, delta_bias if delta_bias is not None else u, dy, ckpt)
    outputs = (du, ddelta, dA, dB, dC, dD, dbias)
    sizes = (length, n_chunks, groups, dim, dim // groups, n_state)
    strides = (*u.stride(), *delta.stride(), *A.stride(), *B.stride(), *C.stride(), *dy.stride())
    flags = dict(HAS_D=D is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=bool(softplus),
                 CHUNK=CHUNK, BLOCK_D=block_d, BLOCK_N=block_n // split, num_warps=num_warps)
    if split > 1:
        flags["N_SPLIT"] = split
    if kernel != "seq":
        steps = variant == "steps"
        # SEG_PAR spills under the steps variant's cap (kernel_resources.py): uncapped there
        flags.update(_bwd_maxnreg() or ({"maxnreg": _STEPS_MAXNREG} if steps and not par else {}))
        part_stride = batch * groups * n_state * length  # elements between two slices of dB, dC
        bwd = _scan_bwd_steps_kernel if steps else _scan_bwd_chunked_kernel
        bwd[(grid[0] * rows, grid[1], grid[2] * split)](*inputs, ws, carry, *outputs, *sizes, part_stride, seg_chunks,
                                                        rows, *strides, **flags, T=chunk_t, PARTIAL=partial,
                                                        SEG_PAR=par)
    else:
        _scan_bwd_kernel[grid](*inputs, ws, *outputs, *sizes, *strides, **flags)
    if partial:
        dB, dC = dB.sum(0), dC.sum(0)
    return du.to(u.dtype), ddelta.to(delta.dtype), dA.sum(0), dB, dC, dD.sum(0), dbias.sum(0)


GLUON_BWD_ENV_VAR = "MEDSEGMAMBA_TRITON_BWD_GLUON"
_GLUON_SUB = 8  # steps a sub-chunk of scan_gluon.scan_bwd_kernel stages in shared memory
_GLUON_MAXNREG = 128  # its registers a thread (_gluon_bwd_config)


def _gluon_bwd_config(n_state):
    """(SPT_N, TPW_N, SPT_D, num_warps, block_d, block_n, maxnreg, sub) of scan_gluon.scan_bwd_kernel.

    Default: a warp per 16 states (up to 4 warps), 4 lanes over a warp's states and 8 over the
    channels, 2 channels a thread: at the paper's N 64, 4 states x 2 channels a thread, 16
    channels a program in 4 warps; sub-chunks of `sub` = 8 steps (32 KB of shared memory) and
    registers capped at 128 a thread (maxnreg; 0 leaves ptxas its choice, 213 there): as built for
    sm_90 its loops then spill nothing (a few spills per sub-chunk outside them), and four programs
    share a multiprocessor, so the paper's grid at batch 1 (512 programs) runs in one wave. On an
    H100, one paper-size scan's forward + backward at batch 1 / 2: 3.39 / 6.76 ms, against 4.36 /
    7.44 with 16-step sub-chunks (64 KB: three programs), 4.01 / 6.97 capped at 168 registers
    (three), 3.58 / 6.85 uncapped with 16-step sub-chunks (two); 7.07 / 14.02 for the chunked
    backward (benchmarks/results/2026-12-07-h100-s19/).
    $MEDSEGMAMBA_TRITON_BWD_GLUON="SPT_N,TPW_N,SPT_D,warps[,maxnreg[,sub]]" overrides it
    (benchmarks); the states must fill the block: SPT_N * TPW_N * warps = block_n."""
    block_n = triton.next_power_of_2(n_state)
    value = os.environ.get(GLUON_BWD_ENV_VAR)
    if value:
        try:
            spt_n, tpw_n, spt_d, warps, *rest = (int(v) for v in value.split(","))
            maxnreg, sub = (rest + [_GLUON_MAXNREG, _GLUON_SUB][len(rest):]) if len(rest) <= 2 else (-1, -1)
        except ValueError:
            spt_n = tpw_n = spt_d = warps = maxnreg = sub = 0
        if (min(spt_n, tpw_n, spt_d, warps) < 1 or 32 % tpw_n or spt_n * tpw_n * warps != block_n
                or any(v & (v - 1) for v in (spt_n, tpw_n, spt_d, warps))
                or not (maxnreg == 0 or (24 <= maxnreg <= 255 and maxnreg % 8 == 0))
                or sub not in (2, 4, 8, 16, 32, 64)):
            raise ValueError(f"selective_scan_triton: ${GLUON_BWD_ENV_VAR} must be "
                             f"'SPT_N,TPW_N,SPT_D,warps[,maxnreg[,sub]]', powers of two with SPT_N * TPW_N * warps = "
                             f"{block_n} (N {n_state}), maxnreg 0 or a multiple of 8 in 24..255, sub a power of two "
                             f"in 2..{CHUNK}, got {value!r}")
    else:
        warps = max(1, min(4, block_n // 16))
        tpw_n = min(4, block_n // warps)
        spt_n, spt_d, maxnreg, sub = block_n // warps // tpw_n, 2, _GLUON_MAXNREG, _GLUON_SUB
    return spt_n, tpw_n, spt_d, warps, spt_d * (32 // tpw_n), block_n, maxnreg, sub


def _launch_bwd_gluon(dy, u, delta, A, B, C, D, delta_bias, softplus, ckpt):
    """`_launch_bwd` on scan_gluon.scan_bwd_kernel ("gluon", or "auto" where `_auto_gluon_bwd` takes it)."""
    if delta_bias is not None or softplus:
        raise ValueError("selective_scan_triton: the Gluon backward takes delta without bias or softplus "
                         "(_scan_bwd applies them outside the kernel)")
    du, ddelta, dA, dB, dC, dD, _ = _gluon_bwd(u, delta, dy, A, B, C, D, ckpt, None, B.shape[1])
    return (du.to(u.dtype), ddelta.to(delta.dtype), dA, dB, dC, dD,
            torch.zeros(u.shape[1], device=u.device, dtype=torch.float32))


def _gluon_bwd(u, dl, dy, A, B, C, D, ckpt, paths, groups, delta_bias=None, softplus=False):
    """scan_gluon.scan_bwd_kernel through the custom op `_gluon_bwd_op`: torch.compile traces
    Triton's kernels but not Gluon's, so under it the launch is an op it keeps whole. Returns
    (du, ddelta, dA, dB, dC, dD, dbias).

    dl is the step, without bias or softplus, unless delta_bias or softplus are given: then dl is
    delta, the kernel applies them, ddelta is the gradient for delta itself and dbias (G*Dg,) the
    bias's (summed over the batch; zeros without a bias).

    Without paths, _scan_bwd_chunked_kernel's layouts: u, dl, dy (B, D, L), B and C (B, G, N, L);
    du and ddelta come back (B, D, L), dB and dC (B, G, N, L). With paths (G, L), SS3D's
    (`selective_scan_paths_triton_grad`): u (B, L, Dg), dl (B, G, L, Dg), dy (B, L, G, Dg), B and C
    (B, G, L, N); du (per group: u is shared) and ddelta (B, G, L, Dg), dB and dC (B, G, L, N).
    dA (G*Dg, N) and dD (G*Dg,) summed over the batch; all float32."""
    if interpreting():
        raise RuntimeError("selective_scan_triton: bwd_kernel='gluon' needs a GPU (Gluon has no interpreter)")
    return _gluon_bwd_op(u, dl, dy, A, B, C, D, ckpt, paths, groups, delta_bias, bool(softplus))


def _gluon_bwd_shapes(u, dl, A, B, paths, groups):
    """(du and ddelta's shape, dB and dC's shape) of `_gluon_bwd`."""
    if paths is None:
        batch, dim, length = u.shape
        return (batch, dim, length), (batch, groups, A.shape[1], length)
    return tuple(dl.shape), tuple(B.shape)


@torch.library.custom_op("medsegmamba::scan_bwd_gluon", mutates_args=())
def _gluon_bwd_op(u: torch.Tensor, dl: torch.Tensor, dy: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                  C: torch.Tensor, D: Optional[torch.Tensor], ckpt: torch.Tensor, paths: Optional[torch.Tensor],
                  groups: int, delta_bias: Optional[torch.Tensor] = None, softplus: bool = False
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                             torch.Tensor]:
    from .scan_gluon import scan_bwd_kernel

    n_state = A.shape[1]
    dim = A.shape[0]
    dim_group = dim // groups
    batch = u.shape[0]
    length = u.shape[2] if paths is None else u.shape[1]
    spt_n, tpw_n, spt_d, warps, block_d, block_n, maxnreg, sub = _gluon_bwd_config(n_state)
    atomic = _bc_sums("atomic") == "atomic"
    grid = (batch, groups, triton.cdiv(dim_group, block_d))
    n_chunks = triton.cdiv(length, CHUNK)
    if ckpt.shape != (grid[0] * grid[1] * grid[2], n_chunks, block_d, block_n):
        raise RuntimeError(f"selective_scan_triton: checkpoint shape {tuple(ckpt.shape)} does not fit the Gluon "
                           f"backward's grid (block_d {block_d}, N block {block_n})")
    dev, f32 = u.device, torch.float32
    out_shape, bc_shape = _gluon_bwd_shapes(u, dl, A, B, paths, groups)
    du = torch.empty(out_shape, device=dev, dtype=f32)
    ddl = torch.empty(out_shape, device=dev, dtype=f32)
    ws = torch.empty((ckpt.shape[0], CHUNK // sub, block_d, block_n), device=dev, dtype=f32)
    dA = torch.empty((batch, dim, n_state), device=dev, dtype=f32)
    # one slice per channel block, summed below (or one tensor, added to atomically)
    dB = torch.zeros((1,) + bc_shape, device=dev, dtype=f32) if atomic else \
        torch.empty((grid[2],) + bc_shape, device=dev, dtype=f32)
    dC = torch.zeros_like(dB) if atomic else torch.empty_like(dB)
    dD = torch.empty((batch, dim), device=dev, dtype=f32)
    dbias = torch.zeros((batch, dim), device=dev, dtype=f32)
    # every tensor as (batch, group, row, column) with a stride each: rows the steps (or the paths'
    # positions), columns the channels or states
    if paths is None:
        by_group = lambda t: (t.stride(0), dim_group * t.stride(1), t.stride(2), t.stride(1))  # noqa: E731
        swap = lambda t: (t.stride(0), t.stride(1), t.stride(3), t.stride(2))  # noqa: E731
        su, st, sy, sb, sc, so = by_group(u), by_group(dl), by_group(dy), swap(B), swap(C), by_group(du)
        sq = (dB.stride(0), dB.stride(1), dB.stride(2), dB.stride(4), dB.stride(3))
    else:
        su = (u.stride(0), 0, u.stride(1), u.stride(2))  # u is shared by the groups
        sy = (dy.stride(0), dy.stride(2), dy.stride(1), dy.stride(3))
        st, sb, sc, so, sq = dl.stride(), B.stride(), C.stride(), du.stride(), dB.stride()
    scan_bwd_kernel[grid](u, dl, A, B, C, D if D is not None else u, dy, ckpt, ws, paths if paths is not None else u,
                          delta_bias if delta_bias is not None else u, du, ddl, dA, dB, dC, dD, dbias,
                          length, n_chunks, groups, dim, dim_group, n_state,
                          *su, *st, *sy, *A.stride(), *sb, *sc, *so, *sq, HAS_D=D is not None, CHUNK=CHUNK,
                          SPT_N=spt_n, TPW_N=tpw_n, SPT_D=spt_d, SUB=sub, PATHS=paths is not None, ATOMIC=atomic,
                          HAS_BIAS=delta_bias is not None, SOFTPLUS=softplus,
                          num_warps=warps, **({"maxnreg": maxnreg} if maxnreg else {}))
    return du, ddl, dA.sum(0), dB.sum(0), dC.sum(0), dD.sum(0), dbias.sum(0)


@_gluon_bwd_op.register_fake
def _gluon_bwd_fake(u, dl, dy, A, B, C, D, ckpt, paths, groups, delta_bias=None, softplus=False):
    out_shape, bc_shape = _gluon_bwd_shapes(u, dl, A, B, paths, groups)
    f32 = torch.float32
    return (u.new_empty(out_shape, dtype=f32), u.new_empty(out_shape, dtype=f32), A.new_empty(A.shape, dtype=f32),
            u.new_empty(bc_shape, dtype=f32), u.new_empty(bc_shape, dtype=f32), A.new_empty(A.shape[0], dtype=f32),
            A.new_empty(A.shape[0], dtype=f32))


SPLIT_ENV_VAR = "MEDSEGMAMBA_TRITON_BWD_SPLIT"
BWD_SPLITS = ("1", "2", "4")


def _bwd_split() -> int:
    """Over how many programs the chunked backward ("scan" body) splits each channel block's states,
    from $MEDSEGMAMBA_TRITON_BWD_SPLIT: 1 (the default), 2 or 4. At 1 the paper's launch holds 64
    states x 16 channels x T 2 in 128 threads of 255 registers, two programs a multiprocessor, and
    its dependent chains stall it (session 11's profile: 1.5 of 4 instructions a cycle issued). A
    split gives each program fewer states, and each thread less to hold; du and ddelta, sums over
    the states, are then added atomically (scan_kernels.py). Two addends onto zero give the same
    sum in either order; four may not, from run to run, in the last bit."""
    return int(_kernel_name(None, "split", SPLIT_ENV_VAR, BWD_SPLITS, "1"))


MAXNREG_ENV_VAR = "MEDSEGMAMBA_TRITON_BWD_MAXNREG"


def _bwd_maxnreg() -> dict:
    """{"maxnreg": R} from $MEDSEGMAMBA_TRITON_BWD_MAXNREG, else {}: a cap on the chunked and
    parallel backward's registers per thread. Uncapped, ptxas gives it 255 at the paper's and the
    default model's launch (no spills as launched), which lets two of its 4-warp programs share a
    multiprocessor; 168 lets three, 128 four, at the cost of spills, and 15-75 % more time (session 8)."""
    value = os.environ.get(MAXNREG_ENV_VAR)
    if not value:
        return {}
    try:
        regs = int(value)
    except ValueError:
        regs = 0
    if not 24 <= regs <= 255 or regs % 8:
        raise ValueError(f"selective_scan_triton: ${MAXNREG_ENV_VAR} must be a multiple of 8 in 24..255, got {value!r}")
    return {"maxnreg": regs}


SEGMENTS_ENV_VAR = "MEDSEGMAMBA_TRITON_SEGMENTS"
_SEG_PROGRAMS = 4096          # programs the parallel backward aims for (an H100 has 132 multiprocessors)
_SEG_WS_BYTES = 256 * 2**20   # at most this much workspace


def _segments(segments, n_chunks, programs, ws_bytes):
    """How many segments the parallel backward cuts time into: `segments`, else
    $MEDSEGMAMBA_TRITON_SEGMENTS, else enough for about _SEG_PROGRAMS programs with at most
    _SEG_WS_BYTES of workspace (each segment has its own); between 1 and the checkpoint chunks."""
    source = "segments"
    if segments is None and os.environ.get(SEGMENTS_ENV_VAR):
        segments, source = os.environ[SEGMENTS_ENV_VAR], f"${SEGMENTS_ENV_VAR}"
    if segments is None:
        want = triton.cdiv(_SEG_PROGRAMS, programs)
        return max(1, min(n_chunks, want, _SEG_WS_BYTES // max(1, ws_bytes)))
    try:
        segments = int(segments)
    except (TypeError, ValueError):
        segments = 0
    if segments < 1:
        raise ValueError(f"selective_scan_triton: {source} must be a positive integer, got {segments!r}")
    return min(segments, n_chunks)


def _segment_carries(dy, delta, A, C, delta_bias, softplus, grid, seg_len, n_segs, block_d, block_n, chunk_t,
                     num_warps):
    """Passes 1 and 2 of the parallel backward: the adjoint that enters each segment (`seg_len`
    steps) from the one after it, (programs * n_segs, BLOCK_N, BLOCK_D) float32 (scan_kernels.py says how)."""
    batch, groups, blocks = grid
    slots = batch * groups * blocks * n_segs
    gloc = torch.empty((slots, block_n, block_d), device=dy.device, dtype=torch.float32)
    dl_sum = torch.empty((slots, block_d), device=dy.device, dtype=torch.float32)
    carry = torch.empty_like(gloc)
    _scan_bwd_local_kernel[(batch * n_segs, groups, blocks)](
        delta, A, C, delta_bias if delta_bias is not None else delta, dy, gloc, dl_sum,
        delta.shape[2], seg_len, n_segs, groups, delta.shape[1] // groups, A.shape[1],
        *delta.stride(), *A.stride(), *C.stride(), *dy.stride(),
        HAS_BIAS=delta_bias is not None, SOFTPLUS=bool(softplus), BLOCK_D=block_d, BLOCK_N=block_n,
        T=chunk_t, num_warps=num_warps)
    _scan_bwd_carry_kernel[grid](A, gloc, dl_sum, carry, n_segs, groups, delta.shape[1] // groups, A.shape[1],
                                 *A.stride(), BLOCK_D=block_d, BLOCK_N=block_n, num_warps=num_warps)
    return carry


BWD_DELTA_ENV_VAR = "MEDSEGMAMBA_TRITON_BWD_DELTA"
BWD_DELTAS = ("auto", "outside", "kernel")


def _bwd_delta(compiling: bool = False) -> str:
    """Where the walked route's backward (SS3D under autograd, `selective_scan_paths_triton_grad`)
    applies delta's bias and softplus and takes their gradients, from $MEDSEGMAMBA_TRITON_BWD_DELTA:
    "outside" (in PyTorch, around the Gluon backward, as `_scan_bwd` does for every backward),
    "kernel" (in scan_gluon.scan_bwd_kernel, once per (step, channel) as it stages a sub-chunk,
    sparing the (Bt, G, L, Dg) float32 tensors of x, softplus(x), sigmoid(x) and their products), or
    "auto" (the default): "outside" where the forward ran under torch.compile (`compiling`: inductor
    fuses those elementwise kernels with their neighbours), else "kernel". The paper network's
    training step at batch 8 on an H100 (benchmarks/results/2026-12-07-h100-s23/): eager 50.8 ms a
    patch with "kernel" against 51.8 "outside"; compiled 41.2 against 40.5."""
    choice = _kernel_name(None, "delta", BWD_DELTA_ENV_VAR, BWD_DELTAS, "auto")
    if choice == "auto":
        return "outside" if compiling else "kernel"
    return choice


BC_ENV_VAR = "MEDSEGMAMBA_TRITON_BC"
BC_SUMS = ("atomic", "partial")


def _bc_sums(default: str) -> str:
    """How a backward sums dB and dC over channel blocks, from $MEDSEGMAMBA_TRITON_BC, else
    `default`: "partial" (a (B, G, N, L) slice per channel block, summed after the kernel) or
    "atomic" (atomic adds into one tensor, whose order, and so last bits, vary from run to run).
    With `torch.use_deterministic_algorithms(True)` the default is "partial".

    The chunked backward's default is "partial": on an H100 at the paper's size (8 x 1024 channels,
    N 64, L 1728) it took the scan's forward + backward from 11.2 to 9.1 ms at batch 1 and 92.7 to
    72.5 ms at batch 8, the paper network's training step from 161 to 138 ms per patch
    (benchmarks/results/2026-11-24-h100-s7/); the slices cost (D / block_d) x the size of dB and dC.
    The Gluon backward's (scan_gluon.scan_bwd_kernel) is "atomic": at the same size it took the
    scan's forward + backward from 3.34 to 3.15 ms at batch 1 and 6.66 to 6.25 ms at batch 2, the
    paper network's eager training step at batch 8 from 52.7 to 51.7 ms per patch
    (benchmarks/results/2026-12-07-h100-s22/)."""
    if torch.are_deterministic_algorithms_enabled():
        default = "partial"
    return _kernel_name(None, "bc", BC_ENV_VAR, BC_SUMS, default)


class _SelectiveScanTriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, delta_bias, softplus, kernel, block_d, num_warps, chunk_t, bwd_kernel,
                bwd_launch, bwd_segments):
        needs_grad = any(t is not None and t.requires_grad for t in (u, delta, A, B, C, D, delta_bias))
        bwd_block_d, bwd_chunk_t, bwd_warps = bwd_launch or (None, None, None)
        if (bwd_kernel == "auto" and needs_grad and bwd_launch is None and kernel == "chunked"
                and _auto_gluon_bwd(u.shape[0], B.shape[1], u.shape[1] // B.shape[1], A.shape[1], u.device)):
            bwd_kernel = "gluon"  # decided here: the checkpoints are written in the backward's channel block
        if bwd_kernel == "gluon" and bwd_block_d is None:  # the checkpoints in its channel block
            bwd_block_d = _gluon_bwd_config(A.shape[1])[4]
        y, ckpt, bwd_cfg = _scan_fwd(u, delta, A, B, C, D, delta_bias, softplus, needs_grad, block_d, num_warps,
                                     kernel, chunk_t, bwd_block_d)
        if needs_grad:
            ctx.save_for_backward(u, delta, A, B, C, D, delta_bias, ckpt)
            # the checkpoint layout fixes the backward's channel block; the sequential backward picks
            # its own warps unless the caller fixed them for the sequential forward, the chunked one
            # unless bwd_launch fixes them
            if bwd_kernel != "seq":
                bwd_cfg = (bwd_cfg[0], bwd_warps, bwd_kernel, bwd_chunk_t, bwd_segments)
            ctx.softplus, ctx.cfg = softplus, bwd_cfg
        return y

    @staticmethod
    def backward(ctx, dy):
        u, delta, A, B, C, D, delta_bias, ckpt = ctx.saved_tensors
        du, ddelta, dA, dB, dC, dD, dbias = _scan_bwd(dy, u, delta, A, B, C, D, delta_bias, ctx.softplus,
                                                     ckpt, *ctx.cfg)
        return (du, ddelta, dA.to(A.dtype), dB.to(B.dtype), dC.to(C.dtype),
                None if D is None else dD.to(D.dtype),
                None if delta_bias is None else dbias.to(delta_bias.dtype), None, None, None, None, None, None, None,
                None)


def selective_scan_paths_triton(u, delta, A, B, C, paths, D=None, delta_bias=None, delta_softplus=True, *,
                                kernel=None, block_d=None, num_warps=None, chunk_t=None, gluon_launch=None):
    """SS3D's scan straight from its layouts, without autograd (inference): the contract of
    `medsegmamba.ops.selective_scan_paths`, y (Bt, L, G, Dg) float32.

    The kernel reads step t of group g from row paths[g, t] of u (Bt, L, Dg), shared by all
    groups, of delta (Bt, G, L, Dg) and of B, C (Bt, G, L, N), and writes y there, so the
    (Bt, G*Dg, L) copies that `selective_scan_triton` takes are never made. kernel (`_walk_kernel_name`):
    "chunked", the chunked forward kernel (block_d / num_warps / chunk_t override its launch), or
    "gluon" (`_gluon_walk_config`; gluon_launch = (SPT_N, TPW_N, SPT_D, T, num_warps), each may be None),
    or "auto" (`_auto_walk_kernel`: Gluon where its grid fills the GPU).
    """
    _check_device(u, delta, A, B, C, D, delta_bias, paths)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (u, delta, A, B, C, D, delta_bias)):
        raise RuntimeError("selective_scan_paths_triton: inference only; "
                           "under autograd use medsegmamba.ops.selective_scan_paths")
    batch, length, dim_group = u.shape
    groups, n_state = delta.shape[1], A.shape[1]
    paths = paths.to(torch.int32).contiguous()
    kernel = _walk_kernel_name(kernel)
    if kernel == "auto":
        kernel = _auto_walk_kernel(batch, groups, dim_group, n_state, u.device)
    if kernel == "gluon":
        return _walk_gluon(u, delta, A, B, C, paths, D, delta_bias, delta_softplus, gluon_launch)
    return _walk_chunked(u, delta, A, B, C, paths, D, delta_bias, delta_softplus,
                         _chunked_config(dim_group, n_state, block_d, num_warps, chunk_t))


def _walk_chunked(u, delta, A, B, C, paths, D, delta_bias, softplus, config, ckpt=None, ckpt_block_d=None):
    """`_scan_fwd_chunked_kernel` walking SS3D's paths at `config` (`_chunked_config`'s): y
    (Bt, L, G, Dg) float32; with `ckpt`, its checkpoints too, in blocks of ckpt_block_d channels."""
    batch, length, dim_group = u.shape
    groups, n_state = delta.shape[1], A.shape[1]
    block_d, block_n, chunk_t, num_warps = config
    y = torch.empty((batch, length, groups, dim_group), device=u.device, dtype=torch.float32)
    (s_ub, s_ul, s_ud), (s_tb, s_tg, s_tl, s_td) = u.stride(), delta.stride()
    (s_bb, s_bg, s_bl, s_bn), (s_cb, s_cg, s_cl, s_cn) = B.stride(), C.stride()
    s_yb, s_yl, s_yg, s_yd = y.stride()
    grid = (batch, groups, triton.cdiv(dim_group, block_d))
    _scan_fwd_chunked_kernel[grid](
        u, delta, A, B, C, D if D is not None else u, delta_bias if delta_bias is not None else u, y,
        ckpt if ckpt is not None else y, paths, length, groups, dim_group, n_state,
        s_ub, 0, s_ud, s_ul, s_tb, s_tg, s_td, s_tl, *A.stride(),
        s_bb, s_bg, s_bn, s_bl, s_cb, s_cg, s_cn, s_cl, s_yb, s_yg, s_yd, s_yl,
        HAS_D=D is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=bool(softplus), STORE_CKPT=ckpt is not None,
        CHUNK=CHUNK, BLOCK_D=block_d, BLOCK_N=block_n, T=chunk_t,
        CKPT_BLOCK_D=ckpt_block_d if ckpt is not None else block_d, PATHS=True, num_warps=num_warps)
    return y


def paths_grad_available(u, delta, A) -> bool:
    """Whether `selective_scan_paths` takes `selective_scan_paths_triton_grad` under autograd for
    these inputs (u (Bt, L, Dg), delta (Bt, G, L, Dg), A (G*Dg, N)): on a CUDA GPU with Gluon (its
    backward is scan_gluon.scan_bwd_kernel, which has no interpreter), when $MEDSEGMAMBA_TRITON_BWD
    is "gluon", or "auto" (the default) where the Gluon backward's grid fills the GPU
    (`_auto_gluon_bwd`): measured there, the paper network's training step on an H100 (batch 2)
    took 59.5 ms a patch walked against 75.1 ms gathered (benchmarks/results/2026-12-07-h100-s19/).
    Smaller grids (the default model's below batch 16) keep the gathered route and the
    segment-parallel backward, faster there for the scan alone; the walked route is not measured there."""
    if interpreting() or u.device.type != "cuda" or not _gluon_available():
        return False
    kernel = _bwd_kernel_name(None)
    return kernel == "gluon" or (kernel == "auto" and _auto_gluon_bwd(u.shape[0], delta.shape[1], u.shape[2],
                                                                      A.shape[1], u.device))


def selective_scan_paths_triton_grad(u, delta, A, B, C, paths, D=None, delta_bias=None, delta_softplus=True):
    """SS3D's scan straight from its layouts under autograd: the contract of
    `medsegmamba.ops.selective_scan_paths`, y (Bt, L, G, Dg) float32, differentiable in every input
    but paths. The chunked forward kernel walks the paths and keeps its checkpoints; the Gluon
    backward walks them too. Neither makes the (Bt, G*Dg, L) copies of the gathered route, nor
    does autograd scatter their gradients back."""
    _check_device(u, delta, A, B, C, D, delta_bias, paths)
    return _SelectiveScanPathsTriton.apply(u, delta, A, B, C, paths.to(torch.int32).contiguous(), D, delta_bias,
                                           bool(delta_softplus))


class _SelectiveScanPathsTriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, paths, D, delta_bias, softplus):
        dim_group, n_state = u.shape[2], A.shape[1]
        # the checkpoints in the Gluon backward's channel blocks
        ckpt_block_d = _gluon_bwd_config(n_state)[4]
        walk = _walk_kernel_name(None)
        if walk == "auto":  # its own rule here: the Gluon walk also stores the checkpoints
            walk = _auto_walk_kernel(u.shape[0], delta.shape[1], dim_group, n_state, u.device,
                                     per_multiprocessor=_TRAIN_WALK_PROGRAMS)
        if walk == "gluon":
            y, ckpt = _walk_gluon_ckpt_op(u, delta, A, B, C, paths, D, delta_bias, softplus,
                                          list(_gluon_walk_config(dim_group, n_state)), ckpt_block_d)
        else:
            ckpt = _walk_ckpt(u, delta, A, ckpt_block_d)
            y = _walk_chunked(u, delta, A, B, C, paths, D, delta_bias, softplus, _chunked_config(dim_group, n_state),
                              ckpt, ckpt_block_d)
        ctx.save_for_backward(u, delta, A, B, C, paths, D, delta_bias, ckpt)
        ctx.softplus = softplus
        # decided here: in the backward torch.compiler.is_compiling() is False even as AOTAutograd traces it
        ctx.delta = _bwd_delta(compiling=torch.compiler.is_compiling())
        return y

    @staticmethod
    def backward(ctx, dy):
        u, delta, A, B, C, paths, D, delta_bias, ckpt = ctx.saved_tensors
        groups, dim_group = delta.shape[1], delta.shape[3]
        if ctx.delta == "kernel":  # delta's bias and softplus, and their gradients, in the kernel
            du, ddelta, dA, dB, dC, dD, dbias = _gluon_bwd(u, delta, dy, A, B, C, D, ckpt, paths, groups, delta_bias,
                                                           ctx.softplus)
            dbias = dbias if delta_bias is not None else None
        else:  # here, their gradient after the kernel (as _scan_bwd does)
            x = delta.float()
            if delta_bias is not None:
                x = x + delta_bias.float().view(groups, 1, dim_group)
            dl = torch.nn.functional.softplus(x) if ctx.softplus else x  # (Bt, G, L, Dg), contiguous
            # du per group (u is shared: summed below) and ddelta, in delta's layout
            du, ddl, dA, dB, dC, dD, _ = _gluon_bwd(u, dl, dy, A, B, C, D, ckpt, paths, groups)
            ddelta = ddl * torch.sigmoid(x) if ctx.softplus else ddl  # d softplus(x) / dx = sigmoid(x)
            dbias = ddelta.sum((0, 2)).reshape(-1) if delta_bias is not None else None
        return (du.sum(1).to(u.dtype), ddelta.to(delta.dtype), dA.to(A.dtype), dB.to(B.dtype), dC.to(C.dtype), None,
                None if D is None else dD.to(D.dtype), None if dbias is None else dbias.to(delta_bias.dtype), None)


def _gluon_walk_config(dim_group, n_state, launch=None):
    """(SPT_N, TPW_N, SPT_D, T, num_warps) of scan_gluon.scan_paths_fwd_kernel; `launch` overrides
    any of them that is not None. Default at the paper's N 64: each thread 16 states (4 lanes share a
    channel's states) of 2 channels, 4 warps (64 channels a program), 4 steps a chunk (as fast as 8 at
    batch 8, faster at 1 and 2 on an H100, benchmarks/results/2026-12-07-h100-s18/): 127-128 registers
    for sm_90, so four programs share a multiprocessor, and 7.5-7.8 instructions per element-step
    (Triton 3.6, 3.8), one of them the exponential, against 244 registers and 8.3 instructions for
    the chunked kernel
    (`benchmarks/kernel_resources.py --kernels walk-gluon,fwd-paths --as-launched --loops`).
    At N <= 16 a thread holds all states of one channel. Fewer warps where the group has fewer channels."""
    spt_n, tpw_n, spt_d, chunk_t, num_warps = launch if launch is not None else (None,) * 5
    block_n = triton.next_power_of_2(n_state)
    # up to 16 states a thread; with all of them in one thread, one channel each (96 registers at N 16)
    tpw_n = tpw_n or max(1, min(4, block_n // 16))
    spt_n = spt_n or max(1, block_n // tpw_n)
    spt_d = spt_d or (2 if tpw_n >= 4 else 1)
    if num_warps is None:
        num_warps = max(1, min(4, triton.next_power_of_2(dim_group) // (spt_d * (32 // tpw_n))))
    if spt_n * tpw_n < n_state or 32 % tpw_n:
        raise ValueError(f"selective_scan_paths_triton: the Gluon walk needs SPT_N * TPW_N >= N={n_state} and TPW_N "
                         f"dividing 32, got SPT_N={spt_n}, TPW_N={tpw_n}")
    return spt_n, tpw_n, spt_d, chunk_t or 4, num_warps


def _walk_gluon(u, delta, A, B, C, paths, D, delta_bias, delta_softplus, launch):
    """`selective_scan_paths_triton` on scan_gluon.scan_paths_fwd_kernel, through the custom op
    `_walk_gluon_op`: torch.compile traces Triton's kernels but not Gluon's, so the launch is an op
    it keeps whole (no graph break)."""
    dim_group = u.shape[2]
    config = _gluon_walk_config(dim_group, A.shape[1], launch)
    return _walk_gluon_op(u, delta, A, B, C, paths, D, delta_bias, bool(delta_softplus), list(config))


@torch.library.custom_op("medsegmamba::walk_gluon", mutates_args=())
def _walk_gluon_op(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                   paths: torch.Tensor, D: Optional[torch.Tensor], delta_bias: Optional[torch.Tensor],
                   delta_softplus: bool, config: list[int]) -> torch.Tensor:
    return _launch_walk_gluon(u, delta, A, B, C, paths, D, delta_bias, delta_softplus, config)


@_walk_gluon_op.register_fake
def _walk_gluon_fake(u, delta, A, B, C, paths, D, delta_bias, delta_softplus, config):
    batch, length, dim_group = u.shape
    return u.new_empty((batch, length, delta.shape[1], dim_group), dtype=torch.float32)


@torch.library.custom_op("medsegmamba::walk_gluon_ckpt", mutates_args=())
def _walk_gluon_ckpt_op(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                        paths: torch.Tensor, D: Optional[torch.Tensor], delta_bias: Optional[torch.Tensor],
                        delta_softplus: bool, config: list[int], ckpt_block_d: int
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """`_walk_gluon_op` for training: y and the checkpoints the backward reads (`_walk_ckpt`)."""
    ckpt = _walk_ckpt(u, delta, A, ckpt_block_d)
    return _launch_walk_gluon(u, delta, A, B, C, paths, D, delta_bias, delta_softplus, config, ckpt, ckpt_block_d), ckpt


@_walk_gluon_ckpt_op.register_fake
def _walk_gluon_ckpt_fake(u, delta, A, B, C, paths, D, delta_bias, delta_softplus, config, ckpt_block_d):
    return (_walk_gluon_fake(u, delta, A, B, C, paths, D, delta_bias, delta_softplus, config),
            u.new_empty(_walk_ckpt_shape(u, delta, A, ckpt_block_d), dtype=torch.float32))


def _walk_ckpt_shape(u, delta, A, ckpt_block_d):
    """The checkpoints of a walk under autograd: per block of ckpt_block_d channels of each group and
    batch element, (chunks, ckpt_block_d, 2^ceil(log2 N))."""
    batch, length, dim_group = u.shape
    groups, block_n = delta.shape[1], triton.next_power_of_2(A.shape[1])
    return (batch * groups * triton.cdiv(dim_group, ckpt_block_d), triton.cdiv(length, CHUNK), ckpt_block_d, block_n)


def _walk_ckpt(u, delta, A, ckpt_block_d):
    # a partly used block (channels past dim_group, states past N) must hold finite states for the
    # backward, which reads whole blocks (as in _scan_fwd)
    padded = u.shape[2] % ckpt_block_d or A.shape[1] != triton.next_power_of_2(A.shape[1])
    return (torch.zeros if padded else torch.empty)(_walk_ckpt_shape(u, delta, A, ckpt_block_d), device=u.device,
                                                    dtype=torch.float32)


def _launch_walk_gluon(u, delta, A, B, C, paths, D, delta_bias, delta_softplus, config, ckpt=None, ckpt_block_d=16):
    """scan_gluon.scan_paths_fwd_kernel at `config` (`_gluon_walk_config`'s): y (Bt, L, G, Dg) float32;
    with `ckpt` (`_walk_ckpt`), its checkpoints too."""
    from .scan_gluon import scan_paths_fwd_kernel

    batch, length, dim_group = u.shape
    groups, n_state = delta.shape[1], A.shape[1]
    y = torch.empty((batch, length, groups, dim_group), device=u.device, dtype=torch.float32)
    # the kernel takes channels contiguous (stride 1) in u and delta, as SS3D makes them
    u = u if u.stride(2) == 1 else u.contiguous()
    delta = delta if delta.stride(3) == 1 else delta.contiguous()
    spt_n, tpw_n, spt_d, chunk_t, num_warps = config
    block_d, block_n = spt_d * (32 // tpw_n) * num_warps, spt_n * tpw_n
    if ckpt is not None and (CHUNK % chunk_t or block_n != ckpt.shape[3]):
        raise ValueError(f"selective_scan_paths_triton: checkpoints need the Gluon walk's T ({chunk_t}) to divide "
                         f"{CHUNK} and its state block ({block_n}) to be the checkpoints' ({ckpt.shape[3]})")
    grid = (batch, groups, triton.cdiv(dim_group, block_d))
    scan_paths_fwd_kernel[grid](
        u, delta, A, B, C, D if D is not None else A, delta_bias if delta_bias is not None else A, y, paths,
        ckpt if ckpt is not None else y, length, dim_group, n_state,
        u.stride(0), u.stride(1), delta.stride(0), delta.stride(1), delta.stride(2), *A.stride(),
        *B.stride(), *C.stride(), y.stride(0), y.stride(1), y.stride(2),
        HAS_D=D is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=delta_softplus,
        SPT_N=spt_n, TPW_N=tpw_n, SPT_D=spt_d, T=chunk_t, LANES_D=min(32, block_d), LANES_N=min(32, block_n),
        STORE_CKPT=ckpt is not None, CHUNK=CHUNK, CKPT_BLOCK_D=ckpt_block_d, num_warps=num_warps)
    return y


def selective_scan_triton(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True, *,
                          kernel=None, block_d=None, num_warps=None, chunk_t=None, bwd_kernel=None, bwd_launch=None,
                          bwd_segments=None):
    """Triton selective scan on CUDA; y (Bt, D, L) in u's dtype. Shapes as `selective_scan_ref`.

    kernel picks the forward: "seq" (one step at a time) or "chunked" (T steps at once through an
    associative scan); None reads $MEDSEGMAMBA_TRITON_FWD, default "chunked". bwd_kernel picks
    the backward the same way: "seq", "chunked", "parallel", "gluon" or "auto"; None reads
    $MEDSEGMAMBA_TRITON_BWD, default "auto". Both forwards leave the same checkpoints, which every
    backward reads.
    block_d / num_warps / chunk_t (T, chunked only) override the forward's launch configuration,
    bwd_launch = (block_d, T, num_warps), each may be None, the chunked or parallel backward's (benchmarks
    only); bwd_segments, the parallel backward's segments (None: $MEDSEGMAMBA_TRITON_SEGMENTS, else its rule).
    """
    from ..selective_scan import check_scan_args

    check_scan_args(u, delta, A, B, C, D, delta_bias)
    _check_device(u, delta, A, B, C, D, delta_bias)
    kernel = _fwd_kernel_name(kernel)
    if chunk_t is not None and kernel != "chunked":
        raise ValueError(f"selective_scan_triton: chunk_t is for kernel='chunked', got kernel={kernel!r}")
    bwd_kernel = _bwd_kernel_name(bwd_kernel)
    if bwd_launch is not None and (bwd_kernel == "seq" or len(bwd_launch) != 3):
        raise ValueError(f"selective_scan_triton: bwd_launch is (block_d, T, num_warps) for bwd_kernel='chunked' "
                         f"or 'parallel', "
                         f"got {bwd_launch!r} with bwd_kernel={bwd_kernel!r}")
    return _SelectiveScanTriton.apply(u, delta, A, B, C, D, delta_bias, delta_softplus, kernel, block_d, num_warps,
                                      chunk_t, bwd_kernel, bwd_launch, bwd_segments)
