import pytest
import torch

from medsegmamba.models.kan_mamba import BiMamba, KANMambaBottleneck, RBFKANLinear, build_kan_mamba

PATCH = 32


def test_rbf_kan_basis_by_hand():
    kan = RBFKANLinear(1, 1, grid=3, grid_range=(-1.0, 1.0))  # centres -1, 0, 1; width 1
    kan.norm = torch.nn.Identity()  # look at the bases on raw inputs
    phi = kan.basis(torch.tensor([[0.0], [1.0]]))
    e = torch.exp(torch.tensor(-1.0))
    torch.testing.assert_close(phi, torch.tensor([[e, 1.0, e], [torch.exp(torch.tensor(-4.0)), e, 1.0]]))
    with pytest.raises(ValueError, match="grid"):
        RBFKANLinear(2, 2, grid=1)


def test_kan_layer_fits_a_nonlinear_function():
    torch.manual_seed(0)
    x = torch.linspace(-2, 2, 64).unsqueeze(1)
    y = torch.sin(3 * x)
    kan = RBFKANLinear(1, 1, grid=12)
    kan.norm = torch.nn.Identity()
    opt = torch.optim.Adam(kan.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(kan(x), y)
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.02  # a linear map cannot get below ~0.4 on sin(3x)


def test_bimamba_sees_both_directions():
    torch.manual_seed(0)
    mixer = BiMamba(8, d_state=4)
    x = torch.randn(1, 3, 3, 3, 8, requires_grad=True)
    y = mixer(x)
    assert y.shape == x.shape
    # the FIRST output position depends on the LAST input position (reverse scan)...
    (g_first,) = torch.autograd.grad(y[0, 0, 0, 0].sum(), x, retain_graph=True)
    assert g_first[0, 2, 2, 2].abs().sum() > 0
    # ...and the last on the first (forward scan)
    (g_last,) = torch.autograd.grad(y[0, 2, 2, 2].sum(), x)
    assert g_last[0, 0, 0, 0].abs().sum() > 0


def test_kan_mamba_network_forward_backward():
    torch.manual_seed(0)
    model = build_kan_mamba(channels=(1, 8, 16, 32, 64, 16), num_blocks=2, d_state=4,
                            patch_size=PATCH)
    assert isinstance(model.bottleneck, KANMambaBottleneck) and len(model.bottleneck.blocks) == 2
    logits, feats = model.forward_features(torch.rand(1, 1, PATCH, PATCH, PATCH))
    assert logits.shape == (1, 32, PATCH, PATCH, PATCH) and "bottleneck" in feats
    logits.mean().backward()
    assert model.bottleneck.blocks[0].kan.spline.weight.grad.abs().sum() > 0
