"""selective_scan_ref against an obviously-right step-by-step float64 loop, and the golden vector."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from medsegmamba.ops import selective_scan_ref

SHARED = Path(__file__).parents[2].parent / "shared"
GOLDEN = SHARED / "golden" / "scan_selective_scan_vector.safetensors"


def naive_scan(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True):
    """One step at a time, channel by channel's group spelled out; float64 in, float64 out."""
    batch, dim, length = u.shape
    groups = B.shape[1]
    dl = delta + (delta_bias[None, :, None] if delta_bias is not None else 0)
    dl = F.softplus(dl) if delta_softplus else dl
    group_of = torch.arange(dim) // (dim // groups)
    h = torch.zeros(batch, dim, A.shape[1], dtype=torch.float64)
    ys = []
    for t in range(length):
        Bt, Ct = B[:, group_of, :, t], C[:, group_of, :, t]  # (batch, dim, N)
        h = torch.exp(dl[:, :, t, None] * A) * h + dl[:, :, t, None] * u[:, :, t, None] * Bt
        ys.append((h * Ct).sum(-1))
    y = torch.stack(ys, dim=-1)
    return y + D[None, :, None] * u if D is not None else y


def make_inputs(batch, dim, groups, n, length, seed, dtype=torch.float64, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=dtype)
    ins = dict(u=r(batch, dim, length), delta=r(batch, dim, length) - 1.0, A=-torch.rand(dim, n, generator=g,
               dtype=dtype) * 3 - 0.1, B=r(batch, groups, n, length), C=r(batch, groups, n, length),
               D=r(dim), delta_bias=r(dim) * 0.5)
    return {k: v.requires_grad_(requires_grad) for k, v in ins.items()}


def report(name, got, want):
    err = (got.double() - want.double()).abs()
    print(f"{name}: max err {err.max().item():.3e} mean err {err.mean().item():.3e}")
    return err.max().item()


@pytest.mark.parametrize("length", [1, 7, 37, 130])
@pytest.mark.parametrize("groups", [1, 2, 4])
def test_forward_matches_naive(length, groups):
    ins = make_inputs(2, 8, groups, 5, length, seed=length * 10 + groups)
    want = naive_scan(**ins)
    got = selective_scan_ref(**ins, chunk_size=16)
    assert report("y", got, want) < 1e-10


@pytest.mark.parametrize("drop", ["D", "delta_bias", "both"])
def test_optional_inputs_and_no_softplus(drop):
    ins = make_inputs(1, 4, 2, 3, 19, seed=7)
    for key in (("D", "delta_bias") if drop == "both" else (drop,)):
        ins[key] = None
    for softplus in (True, False):
        if not softplus:  # keep dl positive so the state decays
            ins["delta"] = ins["delta"].abs() * 0.2
            ins["delta_bias"] = None if ins["delta_bias"] is None else ins["delta_bias"].abs()
        want = naive_scan(**ins, delta_softplus=softplus)
        got = selective_scan_ref(**ins, delta_softplus=softplus, chunk_size=5)
        assert report(f"y without {drop}, softplus={softplus}", got, want) < 1e-10


def test_non_contiguous_inputs():
    ins = make_inputs(2, 8, 2, 4, 23, seed=11)
    want = naive_scan(**ins)
    u = ins["u"].transpose(1, 2).contiguous().transpose(1, 2)  # stride (L*D, 1, D)
    B = ins["B"].permute(0, 3, 1, 2).contiguous().permute(0, 2, 3, 1)
    C = ins["C"].new_zeros(2, 2, 4, 46)  # stride 2 in time
    C[..., ::2] = ins["C"]
    C = C[..., ::2]
    assert not (u.is_contiguous() or B.is_contiguous() or C.is_contiguous())
    got = selective_scan_ref(**{**ins, "u": u, "B": B, "C": C})
    assert report("y non-contiguous", got, want) < 1e-10


def test_float32_inputs_give_float32_close_to_float64():
    ins = make_inputs(1, 8, 2, 4, 40, seed=5)
    want = naive_scan(**ins)
    got = selective_scan_ref(**{k: v.float() for k, v in ins.items()})
    assert got.dtype == torch.float32
    assert report("y float32", got, want) < 1e-4


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_decays_past_exp_underflow_match_naive(dtype):
    # a trained network sends many dl*A far below exp's float32 range (to -1000 here); the
    # reference floors them for speed, which must not change y or its gradients
    ins = make_inputs(2, 8, 2, 4, 29, seed=13, dtype=dtype, requires_grad=True)
    with torch.no_grad():
        ins["A"].mul_(torch.logspace(0, 2.5, 4, dtype=dtype))  # rates to ~ -1000 per step
        ins["delta"][:, :4].add_(3.0)
    want_ins = {k: v.detach().double().requires_grad_() for k, v in ins.items()}
    z = F.softplus(want_ins["delta"] + want_ins["delta_bias"][None, :, None])[..., None] * want_ins["A"][:, None]
    assert (z < -103.9).float().mean() > 0.1  # the case is really there: exp underflows to 0
    dy = torch.randn(2, 8, 29, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    want_y = naive_scan(**want_ins)
    want_g = torch.autograd.grad(want_y, list(want_ins.values()), dy)
    got_y = selective_scan_ref(**ins, chunk_size=8)
    got_g = torch.autograd.grad(got_y, list(ins.values()), dy.to(dtype))
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    assert report("y, underflowing decays", got_y, want_y) < tol
    for name, g, w in zip(ins, got_g, want_g):
        assert report(f"d{name}", g, w) < tol * max(1.0, w.abs().max().item()), name


@pytest.mark.parametrize("chunk_size", [3, 128])
def test_gradients_match_naive(chunk_size):
    ins = make_inputs(2, 6, 3, 3, 11, seed=3, requires_grad=True)
    names, tensors = list(ins), list(ins.values())
    dy = torch.randn(2, 6, 11, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    want = torch.autograd.grad(naive_scan(**ins), tensors, dy)
    got = torch.autograd.grad(selective_scan_ref(**ins, chunk_size=chunk_size), tensors, dy)
    for name, g, w in zip(names, got, want):
        assert report(f"d{name}", g, w) < 1e-9, name


def test_gradcheck_small():
    ins = make_inputs(1, 4, 2, 2, 6, seed=9, requires_grad=True)
    fn = lambda *t: selective_scan_ref(*t, chunk_size=4)
    assert torch.autograd.gradcheck(fn, tuple(ins.values()))


def test_bad_shapes_name_the_argument():
    ins = make_inputs(1, 8, 2, 4, 5, seed=0)
    with pytest.raises(ValueError, match="groups G of B/C must divide D=8"):
        selective_scan_ref(**{**ins, "B": ins["B"].repeat(1, 3, 1, 1)[:, :3], "C": ins["C"].repeat(1, 3, 1, 1)[:, :3]})
    with pytest.raises(ValueError, match=r"A must be \(D=8, N\)"):
        selective_scan_ref(**{**ins, "A": ins["A"][:4]})
    with pytest.raises(ValueError, match=r"delta_bias must be \(8,\)"):
        selective_scan_ref(**{**ins, "delta_bias": ins["delta_bias"][:3]})
    with pytest.raises(ValueError, match="chunk_size"):
        selective_scan_ref(**ins, chunk_size=0)


def _golden():
    if not GOLDEN.exists():
        pytest.skip(f"golden vector not found at {GOLDEN} (../shared absent)")
    from safetensors.torch import load_file

    return load_file(str(GOLDEN))


def _golden_scan(g, dtype=torch.float64):
    args = {k: g[k].to(dtype) for k in ("u", "delta", "A", "B", "C", "D", "delta_bias")}
    return selective_scan_ref(**args, delta_softplus=True)


def test_golden_vector():
    g = _golden()
    assert report("golden out", _golden_scan(g), g["out"]) < 1e-6
    assert report("golden out, float32", _golden_scan(g, torch.float32), g["out"]) < 1e-6


def test_golden_vector_perturbed_fails():
    g = _golden()
    g["B"] = g["B"].clone()
    g["B"][0, 2, 3, 900] += 1e-2  # one value of one group's B
    assert report("golden out, perturbed B", _golden_scan(g), g["out"]) > 1e-6
