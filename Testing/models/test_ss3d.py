import pytest
import torch

from models_support import golden, report
from medsegmamba.models import SS3D, SS3DAuthorsLayout

TOL = 1e-5
CASES = [("c", "c_ss3d_state_dict.safetensors", "c_ss3d_io.safetensors"),
         ("c3", "c3_ss3d_scan_dominant_state_dict.safetensors", "c3_ss3d_scan_dominant_io.safetensors")]


def load_module(sd, o, cls=SS3D):
    m = cls(16, 8, expand=1, orientation=o).eval()
    m.load_state_dict({k[2:]: v for k, v in sd.items() if k.startswith(f"{o}.")}, strict=True)
    return m


@pytest.mark.parametrize("tag,sd_file,io_file", CASES)
@pytest.mark.parametrize("cls", [SS3D, SS3DAuthorsLayout])
def test_golden_ss3d(tag, sd_file, io_file, cls):
    sd, io = golden(sd_file), golden(io_file)
    for o in range(6):
        with torch.no_grad():
            out = load_module(sd, o, cls)(io["input"])
        assert report(f"{tag} o{o} {cls.__name__}", out, io[f"out_o{o}"]) < TOL


@pytest.mark.parametrize("tag,sd_file,io_file", CASES)
def test_golden_ss3d_perturbed_fails(tag, sd_file, io_file):
    sd, io = golden(sd_file), golden(io_file)
    for o in range(6):
        m = load_module(sd, o)
        m.set_orientation((o + 1) % 6)  # wrong paths
        with torch.no_grad():
            assert report(f"{tag} o{o} wrong paths", m(io["input"]), io[f"out_o{o}"]) > 10 * TOL
    m = load_module(sd, 0)
    with torch.no_grad():
        for name in ("x_proj_weight", "dt_projs_weight", "dt_projs_bias"):
            getattr(m, name)[[0, 4]] = getattr(m, name)[[4, 0]].clone()  # swap directions 0 and 4
        assert report(f"{tag} swapped k0/k4", m(io["input"]), io["out_o0"]) > 10 * TOL


def test_golden_c2_expand2():
    io = golden("c_ss3d_io.safetensors")
    m = SS3D(16, 8, expand=2, orientation=4).eval()
    m.load_state_dict(golden("c2_ss3d_expand2_o4_state_dict.safetensors"), strict=True)
    assert m.d_inner == 32 and m.dt_rank == 1
    with torch.no_grad():
        assert report("c2", m(io["input"]), io["out_c2"]) < TOL
        m.set_orientation(3)
        assert report("c2 wrong paths", m(io["input"]), io["out_c2"]) > 10 * TOL


def _random_pair(o, c=8, n=4, expand=1, seed=0, size=12):
    torch.manual_seed(seed)
    fast = SS3D(c, n, expand=expand, orientation=o, size=size)
    with torch.no_grad():
        for p in fast.parameters():
            p.add_(0.3 * torch.randn_like(p))  # break the symmetric init (equal A rows etc.)
    twin = SS3DAuthorsLayout(c, n, expand=expand, orientation=o, size=size)
    twin.load_state_dict(fast.state_dict())
    return fast, twin


@pytest.mark.parametrize("o", range(6))
def test_fast_equals_authors_layout(o):
    fast, twin = _random_pair(o, expand=1 + o % 2, seed=o)
    x = torch.randn(2, 12, 12, 12, 8)
    with torch.no_grad():
        assert report(f"fast vs twin o{o}", fast(x), twin(x)) < 1e-5


@pytest.mark.parametrize("o", [0, 4] + [pytest.param(o, marks=pytest.mark.slow) for o in (1, 2, 3, 5)])
def test_fast_equals_authors_layout_grads_small_grid(o):
    # same construction on a 5^3 grid keeps the autograd of the reference scan cheap
    fast, twin = _random_pair(o, expand=1 + o % 2, seed=o, size=5)
    x = torch.randn(2, 5, 5, 5, 8, requires_grad=True)
    y1, y2 = fast(x), twin(x)
    assert report(f"fast vs twin o{o}", y1, y2) < 1e-5
    g = torch.randn_like(y1)
    g1 = torch.autograd.grad(y1, [x] + list(fast.parameters()), g)
    g2 = torch.autograd.grad(y2, [x] + list(twin.parameters()), g)
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def test_fast_differs_from_twin_of_other_orientation():
    fast, _ = _random_pair(1)
    _, twin = _random_pair(2)
    twin.load_state_dict(fast.state_dict())
    x = torch.randn(1, 12, 12, 12, 8)
    with torch.no_grad():
        assert (fast(x) - twin(x)).abs().max() > 1e-4


def test_init_like_mamba():
    m = SS3D(32, 8, orientation=0)
    assert m.dt_rank == 2 and tuple(m.x_proj_weight.shape) == (8, 18, 32)
    assert torch.equal(m.A_logs[5], torch.log(torch.arange(1.0, 9.0)))
    assert torch.equal(m.Ds, torch.ones(256))
    dt = torch.nn.functional.softplus(m.dt_projs_bias)
    assert dt.min() >= 1e-4 - 1e-9 and dt.max() <= 0.1 + 1e-6
    sd = m.state_dict()
    assert sd["scans.index_flat"].dtype == torch.int64 and sd["scans.index_flat"].shape == (1, 1, 1728)
    assert "scan_index" not in sd


def test_bad_scan_table_is_rejected():
    m = SS3D(16, 8)
    sd = m.state_dict()
    sd["scans.index_flat"] = torch.arange(1728).view(1, 1, -1)
    with pytest.raises(ValueError, match="scans.index_flat"):
        m.load_state_dict(sd)


def test_bad_input_and_orientation_errors():
    with pytest.raises(ValueError, match="orientation"):
        SS3D(16, 8, orientation=6)
    with pytest.raises(ValueError, match=r"SS3D input.*\(1, 16, 12, 12, 12\)"):
        SS3D(16, 8)(torch.zeros(1, 16, 12, 12, 12))
