"""Run SS3D's path scan through Triton's CPU interpreter and compare it with the gathered reference.

Run as a script (a subprocess of test_scan_along_paths.py): TRITON_INTERPRET must be set before triton
is imported. Prints one JSON line {case: max abs difference (or a list of them)}.
"""

import json
import os

from medsegmamba.ops.triton.interpreter import enable

enable()  # before triton is imported

import torch  # noqa: E402

from medsegmamba.models import SS3D, SS3DAuthorsLayout  # noqa: E402
from medsegmamba.ops import selective_scan_paths  # noqa: E402
from medsegmamba.ops.triton import selective_scan as tscan  # noqa: E402


def inputs(batch, groups, dim_group, n, length, dtype, seed, strided):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    u = r(batch, length, dim_group)
    delta = r(batch, groups, length, dim_group) - 1.0
    A = -torch.rand(groups * dim_group, n, generator=g) * 3 - 0.1
    if strided:  # B and C as views into one (Bt, L, G, 2N) tensor, as SS3D's projections give them
        bc = r(batch, length, groups, 2 * n).transpose(1, 2)
        B, C = bc[..., :n], bc[..., n:]
    else:
        B, C = r(batch, groups, length, n), r(batch, groups, length, n)
    D, bias = r(groups * dim_group), r(groups * dim_group) * 0.5
    paths = torch.stack([torch.randperm(length, generator=g) for _ in range(groups)])
    return [t.to(dtype) for t in (u, delta, A, B, C)] + [paths, D, bias]


def paths_case(*shape, dtype=torch.float32, seed=0, strided=False, block_d=None, chunk_t=None, zero_paths=False):
    u, delta, A, B, C, paths, D, bias = inputs(*shape, dtype, seed, strided)
    with torch.no_grad():
        ref = selective_scan_paths(u, delta, A, B, C, paths, D, bias, impl="ref")
        if zero_paths:  # the identity path for every group: must no longer match
            paths = torch.arange(paths.shape[1]).expand_as(paths)
        got = tscan.selective_scan_paths_triton(u, delta, A, B, C, paths, D, bias, block_d=block_d, chunk_t=chunk_t)
    assert got.dtype == torch.float32 and got.shape == ref.shape
    return (got - ref).abs().max().item()


def ss3d_case(orientation, seed):
    torch.manual_seed(seed)
    fast = SS3D(8, 4, orientation=orientation, size=4, scan_impl="triton").eval()
    with torch.no_grad():
        for p in fast.parameters():
            p.add_(0.3 * torch.randn_like(p))
    twin = SS3DAuthorsLayout(8, 4, orientation=orientation, size=4, scan_impl="ref").eval()
    twin.load_state_dict(fast.state_dict())
    x = torch.randn(2, 4, 4, 4, 8)
    with torch.no_grad():
        return (fast(x) - twin(x)).abs().max().item()


def route_case():
    """Which route selective_scan_paths takes on Triton by $MEDSEGMAMBA_PATHS: [kernel calls when
    walked, when gathered, largest difference of the two outputs]."""
    u, delta, A, B, C, paths, D, bias = inputs(1, 2, 4, 4, 9, torch.float32, 4, False)
    calls, kernel = [], tscan.selective_scan_paths_triton
    tscan.selective_scan_paths_triton = lambda *a, **k: calls.append(1) or kernel(*a, **k)
    out = {}
    try:
        for route in ("walked", "gathered"):
            os.environ["MEDSEGMAMBA_PATHS"] = route
            before = len(calls)
            with torch.no_grad():
                out[route] = selective_scan_paths(u, delta, A, B, C, paths, D, bias, impl="triton")
            out[route + "_calls"] = len(calls) - before
    finally:
        tscan.selective_scan_paths_triton = kernel
        os.environ.pop("MEDSEGMAMBA_PATHS")
    return [out["walked_calls"], out["gathered_calls"], (out["walked"] - out["gathered"]).abs().max().item()]


CASES = {
    # (batch, groups, channels per group, N, L): 6 channels with block_d 4 leave half a block
    # masked; N=5 pads to 8; 37 steps end inside a chunk of T=4
    "paths": lambda: paths_case(2, 3, 6, 5, 37, block_d=4, chunk_t=4),
    "paths_strided_bc": lambda: paths_case(1, 8, 4, 4, 27, seed=1, strided=True),
    "paths_bf16": lambda: paths_case(1, 2, 8, 4, 19, dtype=torch.bfloat16, seed=2, chunk_t=8),
    "paths_ignored": lambda: paths_case(1, 2, 4, 4, 16, seed=3, zero_paths=True),
    "ss3d": lambda: [ss3d_case(o, o) for o in (0, 3)],
    "route": route_case,
}

if __name__ == "__main__":
    print(json.dumps({name: run() for name, run in CASES.items()}))
