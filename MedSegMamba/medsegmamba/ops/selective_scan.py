"""Mamba S6 selective scan with grouped B/C: the public entry point, its plain-PyTorch twin and
the one place where an implementation is chosen.

Shapes: u, delta (Bt, D, L); A (D, N), already negative; B, C (Bt, G, N, L) with D divisible by G
(channel d reads group d // (D // G)); D (D,); delta_bias (D,).

    dl_t = softplus(delta_t + delta_bias)              (torch softplus, threshold 20)
    h_t  = exp(dl_t * A) * h_{t-1} + dl_t * B_t * u_t  (h_{-1} = 0, h is (D, N) per batch element)
    y_t  = <h_t, C_t> + D * u_t

Implementations: "ref" (this file, any device), "triton" (CUDA, ops/triton/), "mamba_ssm" (CUDA,
the authors' compiled kernel when installed). impl=None reads MEDSEGMAMBA_SCAN, default "auto".

`selective_scan_paths` is the same scan for SS3D's layout: G groups that each walk the same L
positions in their own order (a path), read from and written to those positions.
"""

from __future__ import annotations

import logging
import os

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from .triton.interpreter import interpreting  # imports no triton

log = logging.getLogger(__name__)

IMPLS = ("auto", "ref", "triton", "mamba_ssm")
ENV_VAR = "MEDSEGMAMBA_SCAN"
_CHUNK_BYTES = 64 * 2**20  # one (Bt, D, N, T) chunk buffer of the reference stays under this

try:  # optional, never required
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn as _mamba_ssm_scan
except ImportError:  # also covers a mamba_ssm without its compiled extension
    _mamba_ssm_scan = None


def check_scan_args(u, delta, A, B, C, D=None, delta_bias=None):
    """Raise ValueError/TypeError naming the argument if the shapes do not fit together."""
    for name, t in (("u", u), ("delta", delta), ("A", A), ("B", B), ("C", C), ("D", D),
                    ("delta_bias", delta_bias)):
        if t is not None and not isinstance(t, torch.Tensor):
            raise TypeError(f"selective_scan: {name} must be a torch.Tensor, got {type(t).__name__}")
    if u.dim() != 3:
        raise ValueError(f"selective_scan: u must be (batch, D, L), got shape {tuple(u.shape)}")
    batch, dim, length = u.shape
    if tuple(delta.shape) != tuple(u.shape):
        raise ValueError(f"selective_scan: delta must have u's shape {tuple(u.shape)}, got {tuple(delta.shape)}")
    if A.dim() != 2 or A.shape[0] != dim:
        raise ValueError(f"selective_scan: A must be (D={dim}, N), got shape {tuple(A.shape)}")
    n = A.shape[1]
    for name, t in (("B", B), ("C", C)):
        if t.dim() != 4 or t.shape[0] != batch or t.shape[2] != n or t.shape[3] != length:
            raise ValueError(f"selective_scan: {name} must be (batch={batch}, G, N={n}, L={length}), "
                             f"got shape {tuple(t.shape)}")
    if B.shape[1] != C.shape[1]:
        raise ValueError(f"selective_scan: B and C must have the same groups, got {B.shape[1]} and {C.shape[1]}")
    if B.shape[1] < 1 or dim % B.shape[1]:
        raise ValueError(f"selective_scan: groups G of B/C must divide D={dim}, got G={B.shape[1]}")
    for name, t in (("D", D), ("delta_bias", delta_bias)):
        if t is not None and tuple(t.shape) != (dim,):
            raise ValueError(f"selective_scan: {name} must be ({dim},), got shape {tuple(t.shape)}")


_EXP_FLOOR = -80.0


def _compute_dtype(*tensors):
    """float64 if any input is float64, else float32 (state and sums never in half precision)."""
    return torch.float64 if any(t is not None and t.dtype == torch.float64 for t in tensors) else torch.float32


def _ref_chunk(h, dl, du, A, B, C):
    """One time chunk. h (Bt, G, N, Dg); dl, du (Bt, G, Dg, T); A (G, N, Dg); B, C (Bt, G, N, T).

    Returns y (Bt, G, Dg, T) and the last state."""
    # Built time-major and contiguous, so each step below reads and writes one contiguous
    # (Bt, G, N, Dg) block (strided per-step slices were several times slower on CPU). Channels
    # last: the products with dl, u and B broadcast along outer axes or by a scalar per row, which
    # PyTorch's CPU loops vectorise; with N last they took over half of the chunk's time.
    dl_t, du_t = (x.permute(3, 0, 1, 2).contiguous().unsqueeze(3) for x in (dl, du))  # (T, Bt, G, 1, Dg)
    B_t = B.permute(3, 0, 1, 2).contiguous().unsqueeze(4)                               # (T, Bt, G, N, 1)
    # exp of arguments below about -87 (float32 underflow) takes a slow path several times
    # slower on CPU, and a trained network sends a fifth of them there; exp(-80) ~ 2e-35 is
    # already nothing next to the state it multiplies, so the floor changes no result.
    dA = torch.exp((dl_t * A).clamp_(min=_EXP_FLOOR))  # (T, Bt, G, N, Dg)
    hs = du_t * B_t                                     # dl*B*u; becomes the states below
    if torch.is_grad_enabled():
        states = []
        for t in range(hs.shape[0]):
            h = torch.addcmul(hs[t], dA[t], h)
            states.append(h)
        hs = torch.stack(states)
    else:  # in place: the dl*B*u buffer turns into the states, no second buffer
        hs[0].addcmul_(dA[0], h)
        for t in range(1, hs.shape[0]):
            hs[t].addcmul_(dA[t], hs[t - 1])
    C_t = C.permute(3, 0, 1, 2).contiguous().unsqueeze(3)  # (T, Bt, G, 1, N)
    y = torch.matmul(C_t, hs).squeeze(3)                   # (T, Bt, G, Dg): <C_t, h_t> as a product
    return y.permute(1, 2, 3, 0), hs[-1]


def selective_scan_ref(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True, *, chunk_size=None):
    """Plain-PyTorch selective scan, any device, differentiable by autograd.

    Memory stays bounded: time is cut in chunks of `chunk_size` steps (default: as many as keep a
    (Bt, D, N, T) buffer under 64 MB, at most 64), and under autograd each chunk is checkpointed,
    so only the states at chunk boundaries are kept for backward. Computes in float32 (float64
    if any input is float64); returns y (Bt, D, L) in u's dtype.
    """
    check_scan_args(u, delta, A, B, C, D, delta_bias)
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"selective_scan_ref: chunk_size must be a positive int or None, got {chunk_size!r}")
    dtype = _compute_dtype(u, delta, A, B, C, D, delta_bias)
    batch, dim, length = u.shape
    groups, n = B.shape[1], A.shape[1]
    u_, dl = u.to(dtype), delta.to(dtype)
    if delta_bias is not None:
        dl = dl + delta_bias.to(dtype)[None, :, None]
    if delta_softplus:
        dl = F.softplus(dl)
    shape4 = (batch, groups, dim // groups, length)
    dl4, du4 = dl.reshape(shape4), (dl * u_).reshape(shape4)
    A3 = A.to(dtype).reshape(groups, dim // groups, n).transpose(1, 2).contiguous()  # (G, N, Dg)
    B_, C_ = B.to(dtype), C.to(dtype)
    if chunk_size is None:
        per_step = max(1, batch * dim * n * (8 if dtype == torch.float64 else 4))
        chunk_size = int(min(64, max(1, _CHUNK_BYTES // per_step)))  # 64: fastest on CPU
    use_ckpt = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (u, delta, A, B, C, delta_bias))
    h = u_.new_zeros(batch, groups, n, dim // groups)
    ys = []
    for t0 in range(0, length, chunk_size):
        args = (h, dl4[..., t0:t0 + chunk_size], du4[..., t0:t0 + chunk_size], A3,
                B_[..., t0:t0 + chunk_size], C_[..., t0:t0 + chunk_size])
        y, h = checkpoint(_ref_chunk, *args, use_reentrant=False) if use_ckpt else _ref_chunk(*args)
        ys.append(y)
    y = torch.cat(ys, dim=-1).reshape(batch, dim, length)
    if D is not None:
        y = y + D.to(dtype)[None, :, None] * u_
    return y.to(u.dtype)


def _triton_function(name="selective_scan_triton"):
    """`name` from the Triton implementation (ops/triton/selective_scan.py), or None when triton
    cannot be imported."""
    try:
        from .triton import selective_scan as triton_scan
    except ImportError as exc:
        log.debug("Triton selective scan unavailable: %s", exc)
        return None
    return getattr(triton_scan, name)


def _triton_scan():
    """The Triton implementation, or None when triton cannot be imported."""
    return _triton_function()


def _mamba_ssm_call(u, delta, A, B, C, D, delta_bias, delta_softplus):
    """mamba_ssm's kernel takes grouped (Bt, G, N, L) B/C too; it wants A, D, bias in float32."""
    f32 = (lambda t: None if t is None else t.float())
    return _mamba_ssm_scan(u, delta, f32(A), B, C, f32(D), None, f32(delta_bias), delta_softplus)


def resolve_impl(impl, device):
    """Name of the implementation that runs for `impl` (None -> $MEDSEGMAMBA_SCAN -> "auto")."""
    source = "impl"
    if impl is None:
        impl, source = os.environ.get(ENV_VAR, "auto") or "auto", f"${ENV_VAR}"
    if impl not in IMPLS:
        raise ValueError(f"selective_scan: {source} must be one of {', '.join(IMPLS)}, got {impl!r}")
    on_cuda = torch.device(device).type == "cuda"
    # under Triton's interpreter (tests, smoke runs) the Triton kernels run on CPU tensors, when asked for
    runs_triton = on_cuda or interpreting()
    if impl == "auto":
        if on_cuda and _mamba_ssm_scan is not None:
            return "mamba_ssm"
        if on_cuda and _triton_scan() is not None:
            return "triton"
        return "ref"
    if impl == "mamba_ssm" and (_mamba_ssm_scan is None or not on_cuda):
        why = "mamba_ssm is not installed" if _mamba_ssm_scan is None else f"inputs are on {device}, not CUDA"
        raise RuntimeError(f"selective_scan: {source}='mamba_ssm' cannot run: {why}")
    if impl == "triton" and (not runs_triton or _triton_scan() is None):
        why = "triton cannot be imported" if _triton_scan() is None else f"inputs are on {device}, not CUDA"
        raise RuntimeError(f"selective_scan: {source}='triton' cannot run: {why}")
    return impl


def selective_scan(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True, impl=None):
    """Selective scan y (Bt, D, L) in u's dtype; see the module docstring for shapes and formula.

    impl: "ref", "triton", "mamba_ssm", "auto" or None (then $MEDSEGMAMBA_SCAN, default "auto":
    mamba_ssm if installed and on CUDA, else triton on CUDA, else ref). Forcing an implementation
    that cannot run raises RuntimeError.
    """
    check_scan_args(u, delta, A, B, C, D, delta_bias)
    name = resolve_impl(impl, u.device)
    if name == "mamba_ssm":
        return _mamba_ssm_call(u, delta, A, B, C, D, delta_bias, delta_softplus)
    if name == "triton":
        return _triton_scan()(u, delta, A, B, C, D, delta_bias, delta_softplus)
    return selective_scan_ref(u, delta, A, B, C, D, delta_bias, delta_softplus)


def check_paths_args(u, delta, A, B, C, paths, D=None, delta_bias=None):
    """Raise ValueError naming the argument if the shapes of a `selective_scan_paths` call do not fit."""
    if u.dim() != 3:
        raise ValueError(f"selective_scan_paths: u must be (batch, L, Dg), got shape {tuple(u.shape)}")
    batch, length, dim_group = u.shape
    if paths.dim() != 2 or paths.shape[1] != length or paths.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"selective_scan_paths: paths must be integer (G, L={length}), "
                         f"got {paths.dtype} of shape {tuple(paths.shape)}")
    groups = paths.shape[0]
    if tuple(delta.shape) != (batch, groups, length, dim_group):
        raise ValueError(f"selective_scan_paths: delta must be (batch={batch}, G={groups}, L={length}, "
                         f"Dg={dim_group}), got shape {tuple(delta.shape)}")
    if A.dim() != 2 or A.shape[0] != groups * dim_group:
        raise ValueError(f"selective_scan_paths: A must be (G*Dg={groups * dim_group}, N), got shape {tuple(A.shape)}")
    for name, t in (("B", B), ("C", C)):
        if tuple(t.shape) != (batch, groups, length, A.shape[1]):
            raise ValueError(f"selective_scan_paths: {name} must be (batch={batch}, G={groups}, L={length}, "
                             f"N={A.shape[1]}), got shape {tuple(t.shape)}")
    for name, t in (("D", D), ("delta_bias", delta_bias)):
        if t is not None and tuple(t.shape) != (groups * dim_group,):
            raise ValueError(f"selective_scan_paths: {name} must be ({groups * dim_group},), "
                             f"got shape {tuple(t.shape)}")


PATHS_ENV_VAR = "MEDSEGMAMBA_PATHS"
PATHS_ROUTES = ("walked", "gathered")


def paths_route() -> str:
    """How `selective_scan_paths` runs on Triton, from $MEDSEGMAMBA_PATHS: "walked" (the default:
    the kernels follow the paths; under autograd where `paths_grad_available`) or "gathered"
    (copies into sequences, the scan, a scatter: the route before session 16, kept to compare and
    to fall back on)."""
    route = os.environ.get(PATHS_ENV_VAR, "walked") or "walked"
    if route not in PATHS_ROUTES:
        raise ValueError(f"selective_scan_paths: ${PATHS_ENV_VAR} must be one of {', '.join(PATHS_ROUTES)}, "
                         f"got {route!r}")
    return route


def selective_scan_paths(u, delta, A, B, C, paths, D=None, delta_bias=None, delta_softplus=True, impl=None):
    """The selective scan of G groups that walk the same L positions in their own orders.

    u (Bt, L, Dg) is shared by all groups; delta (Bt, G, L, Dg) and B, C (Bt, G, L, N) are given per
    position; paths (G, L) holds, for each group, the position of each of its steps (each row a
    permutation of 0 .. L-1); A (G*Dg, N), D and delta_bias (G*Dg,) as in `selective_scan`, channel
    c of group g being channel g*Dg + c there. Step t of group g scans position paths[g, t], and
    y[b, paths[g, t], g] is its output: y (Bt, L, G, Dg) in float32.

    This is SS3D's eight-direction scan. With an implementation other than "triton", the inputs
    are gathered into `selective_scan`'s (Bt, G*Dg, L) layout, scanned and scattered back
    (`_paths_by_gather`, the reference). On CUDA, "triton" reads and writes the positions in the
    kernels instead, without those copies, unless $MEDSEGMAMBA_PATHS is "gathered" (`paths_route`):
    for inference always, under autograd where the Gluon backward runs (`paths_grad_available`).
    """
    check_paths_args(u, delta, A, B, C, paths, D, delta_bias)
    name = resolve_impl(impl, u.device)
    needs_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (u, delta, A, B, C, D, delta_bias))
    if name == "triton" and paths_route() == "walked":
        if not needs_grad:
            walk = _triton_function("selective_scan_paths_triton")
            if walk is not None:
                return walk(u, delta, A, B, C, paths, D, delta_bias, delta_softplus)
        else:
            available = _triton_function("paths_grad_available")
            if available is not None and available(u, delta, A):
                return _triton_function("selective_scan_paths_triton_grad")(u, delta, A, B, C, paths, D, delta_bias,
                                                                            delta_softplus)
    return _paths_by_gather(u, delta, A, B, C, paths, D, delta_bias, delta_softplus, name)


def _paths_by_gather(u, delta, A, B, C, paths, D, delta_bias, delta_softplus, impl):
    """`selective_scan_paths` as gathers, `selective_scan` and a scatter (any device, autograd)."""
    batch, length, dim_group = u.shape
    groups = paths.shape[0]
    steps = paths.long()
    # row g*L + paths[g, t] of a (Bt, G*L, X) view: index_select and index_copy, several times
    # faster on a CPU than indexing with (G, L) index tensors
    rows = (steps + torch.arange(groups, device=u.device)[:, None] * length).reshape(-1)

    def to_scan(t, index=rows):  # (Bt, G*L, X) in voxel order -> contiguous float32 (Bt, G, X, L) in path order
        t = t.index_select(1, index).view(batch, groups, length, -1).transpose(2, 3)
        return torch.empty(t.shape, dtype=torch.float32, device=t.device).copy_(t)

    flat = lambda t: t.reshape(batch, groups * length, -1)  # noqa: E731
    xs = to_scan(u, steps.reshape(-1))  # (Bt, G, Dg, L): u is shared by the groups
    dts = to_scan(flat(delta))
    y = selective_scan(xs.view(batch, groups * dim_group, length), dts.view(batch, groups * dim_group, length), A,
                       to_scan(flat(B)), to_scan(flat(C)), D=D, delta_bias=delta_bias,
                       delta_softplus=delta_softplus, impl=impl)
    y = y.view(batch, groups, dim_group, length).transpose(2, 3).reshape(batch, groups * length, dim_group)
    out = torch.index_copy(torch.empty_like(y), 1, rows, y)   # back to voxel order
    return out.view(batch, groups, length, dim_group).transpose(1, 2)  # (Bt, L, G, Dg), a view
