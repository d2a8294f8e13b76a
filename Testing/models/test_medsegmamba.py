import pytest
import torch

from models_support import golden, report
from medsegmamba.models import MedSegMamba

CFG_A = dict(channels=(1, 8, 16, 32, 64, 32), num_blocks=6, d_state=8, num_classes=4)
CFG_B = dict(channels=(1, 8, 16, 32, 64, 48), num_blocks=9, d_state=4, num_classes=32)


def model_from(cfg, sd_file):
    m = MedSegMamba(**cfg).eval()
    m.load_state_dict(golden(sd_file), strict=True)
    return m


def run_with_intermediates(m, x):
    got = {}
    hooks = [m.bottleneck.register_forward_hook(lambda mod, i, o: got.update(bottleneck_in=i[0])),
             m.pre_head_ln.register_forward_hook(lambda mod, i, o: got.update(pre_head_ln_out=o))]
    for i, blk in enumerate(m.bottleneck.blocks):
        hooks.append(blk.register_forward_hook(lambda mod, inp, o, i=i: got.update({f"block{i}_out": o})))
    with torch.no_grad():
        probs = m(x)
    for h in hooks:
        h.remove()
    return probs, got


@pytest.fixture(scope="module")
def golden_a():
    return golden("a_input.safetensors")["input"], golden("a_output_probs.safetensors")["probs"], \
        golden("a_bottleneck_intermediates.safetensors")


def test_golden_a_probs_and_intermediates(golden_a):
    x, want, inter = golden_a
    probs, got = run_with_intermediates(model_from(CFG_A, "a_state_dict.safetensors"), x)
    assert report("a probs", probs, want) < 2e-5
    assert set(got) == set(inter)
    for k in inter:
        assert report(f"a {k}", got[k], inter[k]) < 5e-5


def test_golden_a_perturbed_fails(golden_a):
    x, want, inter = golden_a
    m = model_from(CFG_A, "a_state_dict.safetensors")
    m.bottleneck.blocks[3].self_attention.set_orientation(0)  # block 3 run with orientation-0 paths
    probs, got = run_with_intermediates(m, x)
    assert report("a probs, block 3 wrong paths", probs, want) > 2e-4
    assert report("a block3_out, wrong paths", got["block3_out"], inter["block3_out"]) > 5e-4


def _check_b(m):
    x = golden("b_input.safetensors")["input"]
    want = golden("b_output.safetensors")
    with torch.no_grad():
        probs = m(x)
    labels = probs.argmax(1).to(torch.uint8)
    diff = labels != want["labels"]
    top2 = probs.topk(2, dim=1).values
    margin = (top2[:, 0] - top2[:, 1])[diff]
    slices = {"probs_h40": probs[0, :, 40], "probs_w57": probs[0, :, :, 57], "probs_d13": probs[0, :, :, :, 13]}
    errs = {k: report(f"b {k}", v, want[k]) for k, v in slices.items()}
    print(f"b: {int(diff.sum())} label differences")
    return int(diff.sum()), margin, errs


def test_golden_b_labels_and_slices():
    n_diff, margin, errs = _check_b(model_from(CFG_B, "b_state_dict.safetensors"))
    assert n_diff <= 100 and bool((margin < 1e-5).all())
    assert max(errs.values()) < 1e-5


def test_golden_b_perturbed_fails():
    m = model_from(CFG_B, "b_state_dict.safetensors")
    with torch.no_grad():
        ss = m.bottleneck.blocks[0].self_attention
        for name in ("x_proj_weight", "dt_projs_weight", "dt_projs_bias"):
            getattr(ss, name)[[0, 4]] = getattr(ss, name)[[4, 0]].clone()  # swap directions 0 and 4
    n_diff, margin, errs = _check_b(m)
    assert max(errs.values()) > 1e-5 or n_diff > 100


def test_paper_size_and_keys():
    m = MedSegMamba()
    sd = m.state_dict()
    assert m.num_float_params() == 84_400_736 and len(sd) == 287
    assert sum(v.numel() for k, v in sd.items() if "scans" in k) == 31_104
    assert MedSegMamba(num_classes=25).num_float_params() == 84_400_281
    assert [b.self_attention.orientation for b in m.bottleneck.blocks] == [0, 1, 2, 3, 4, 5, 0, 1, 2]


def test_forward_backward_96_small_widths():
    torch.manual_seed(0)
    m = MedSegMamba((1, 8, 16, 32, 64, 16), num_blocks=1, d_state=4, num_classes=5,
                    dropout=0.1, drop_path=0.3).train()
    x = torch.rand(1, 1, 96, 96, 96)
    logits, feats = m.forward_features(x)
    assert logits.shape == (1, 5, 96, 96, 96)
    shapes = {k: tuple(v.shape) for k, v in feats.items()}
    assert shapes == {"enc1": (1, 8, 96, 96, 96), "enc2": (1, 16, 48, 48, 48), "enc3": (1, 32, 24, 24, 24),
                      "enc4": (1, 64, 12, 12, 12), "bottleneck": (1, 64, 12, 12, 12),
                      "dec4": (1, 32, 24, 24, 24), "dec3": (1, 16, 48, 48, 48), "dec2": (1, 16, 96, 96, 96)}
    logits.float().pow(2).mean().backward()
    grads = [p.grad for p in m.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_forward_is_softmax_of_logits_any_batch():
    m = MedSegMamba((1, 8, 16, 32, 64, 16), num_blocks=1, d_state=4, num_classes=3, patch_size=32).eval()
    x = torch.rand(3, 1, 32, 32, 32)
    with torch.no_grad():
        p = m(x)
        assert torch.allclose(p.sum(1), torch.ones(3, 32, 32, 32), atol=1e-5)
        assert torch.allclose(p, torch.softmax(m.forward_logits(x), 1))
        assert torch.allclose(p[1:2], m(x[1:2]), atol=1e-5)  # batch items independent


def test_fused_groupnorm_matches():
    torch.manual_seed(1)
    m = MedSegMamba((1, 8, 16, 32, 64, 16), num_blocks=1, d_state=4, num_classes=3, patch_size=32).eval()
    x = torch.rand(2, 1, 32, 32, 32)
    with torch.no_grad():
        a = m.forward_logits(x)
        b = m.set_fused_groupnorm(True).forward_logits(x)
        c = m.forward_logits(x.contiguous(memory_format=torch.channels_last_3d))
    assert report("fused GN", b, a) < 1e-4 and report("fused GN, channels-last", c, a) < 1e-4


def test_argument_errors():
    with pytest.raises(ValueError, match=r"channels\[1\]"):
        MedSegMamba((1, 4, 8, 16, 32, 16))
    with pytest.raises(ValueError, match="twice"):
        MedSegMamba((1, 8, 16, 16, 32, 16))
    with pytest.raises(ValueError, match="bottleneck"):
        MedSegMamba((1, 8, 16, 32, 64, 16), bottleneck="lstm")
    with pytest.raises(ValueError, match=r"input: expected \(B, 1, 96, 96, 96\)"):
        MedSegMamba((1, 8, 16, 32, 64, 16), num_blocks=1)(torch.zeros(1, 1, 64, 64, 64))


@pytest.mark.parametrize("shape, channels_last", [((2, 5, 3, 4, 6), False), ((2, 5, 3, 4, 6), True),
                                                   ((1, 1, 2, 3, 1), True), ((3, 8, 1, 5, 2), True)])
def test_nearest_upsampling_matches_nn_upsample(shape, channels_last):
    """NearestUp2 against nn.Upsample (its twin) on random inputs: the same values and gradients, and
    a channels_last_3d input stays channels_last_3d (nn.Upsample's layout otherwise)."""
    from medsegmamba.models.layers import NearestUp2

    torch.manual_seed(sum(shape))
    x = torch.randn(*shape, requires_grad=True)
    xin = x.contiguous(memory_format=torch.channels_last_3d) if channels_last else x
    y, want = NearestUp2()(xin), torch.nn.Upsample(scale_factor=2, mode="nearest")(x)
    assert y.shape == want.shape and torch.equal(y, want)
    # a single channel or a single voxel is both layouts at once; otherwise the output keeps the input's
    assert y.is_contiguous(memory_format=torch.channels_last_3d) == (channels_last or shape[1] == 1)
    assert y.is_contiguous() == (not channels_last or shape[1] == 1)
    g = torch.randn_like(want)
    (gx,), (wx,) = torch.autograd.grad(y, x, g), torch.autograd.grad(want, x, g)
    assert torch.allclose(gx, wx, atol=1e-5)


def test_nearest_upsampling_compiles_in_both_layouts():
    from medsegmamba.models.layers import NearestUp2

    up = torch.compile(NearestUp2(), backend="aot_eager", fullgraph=True)
    x = torch.randn(2, 4, 3, 2, 5)
    for xin in (x, x.contiguous(memory_format=torch.channels_last_3d)):
        y = up(xin)
        assert torch.equal(y, torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"))
        assert y.is_contiguous(memory_format=torch.channels_last_3d) == (xin is not x)


def test_upsampling_block_follows_its_convolutions_layout_under_compile():
    """A channels_last_3d UpBlock3D behind a convolution, compiled: its forward graph holds no
    upsampling gather. The convolution's traced (fake) output reports contiguous strides on the CPU
    at batch 1, so a rule reading x's strides falls back to F.interpolate there (the compiled GPU
    network did too, session 25's profile); the block reads its convolution's weights instead."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd
    from medsegmamba.models.layers import UpBlock3D

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv3d(3, 16, 3, padding=1), UpBlock3D(16, 8))
    x = torch.randn(1, 3, 4, 3, 5)  # batch 1: the CPU's traced convolution reports contiguous strides
    want = net(x)
    net = net.to(memory_format=torch.channels_last_3d)
    graphs = []

    def keep(gm, example_inputs):
        graphs.append({str(n.target) for n in gm.graph.nodes if n.op == "call_function"})
        return make_boxed_func(gm.forward)

    torch._dynamo.reset()
    y = torch.compile(net, backend=aot_autograd(fw_compiler=keep), fullgraph=True)(
        x.contiguous(memory_format=torch.channels_last_3d))
    assert torch.allclose(y, want, atol=1e-5)
    gathers = [op for op in graphs[0] if "upsample" in op or "_unsafe_index" in op]
    assert graphs and not gathers, gathers


@pytest.mark.parametrize("batch, bias, channels_last", [(1, True, False), (3, True, True), (2, False, False)])
def test_pointwise_conv_matches_conv3d(batch, bias, channels_last):
    """PointwiseConv3d's CPU product against F.conv3d (its twin) on random inputs: values and
    gradients, odd shapes, without bias, and on a channels-last input (reshape must copy)."""
    from medsegmamba.models.layers import PointwiseConv3d

    torch.manual_seed(batch)
    layer = PointwiseConv3d(5, 7, bias=bias)
    x = torch.randn(batch, 5, 6, 9, 4, requires_grad=True)
    xin = x.contiguous(memory_format=torch.channels_last_3d) if channels_last else x
    y = layer(xin)
    want = torch.nn.functional.conv3d(x, layer.weight, layer.bias)
    assert y.shape == want.shape and torch.allclose(y, want, atol=1e-5)
    g = torch.randn_like(y)
    (gx, gw) = torch.autograd.grad(y, (x, layer.weight), g)
    (wx, ww) = torch.autograd.grad(want, (x, layer.weight), g)
    assert torch.allclose(gx, wx, atol=1e-5) and torch.allclose(gw, ww, atol=1e-4)
    assert set(layer.state_dict()) == ({"weight", "bias"} if bias else {"weight"})


@pytest.mark.parametrize("c_in, c_out, size, groups, channels_last", [
    (1, 8, (20, 17, 9), 1, False),   # one sample of few elements: PyTorch's slow path, ours oneDNN
    (6, 4, (5, 7, 6), 1, True),
    (8, 8, (6, 6, 6), 8, True),      # depthwise, as in SS3D
])
def test_conv3d_matches_f_conv3d(c_in, c_out, size, groups, channels_last):
    """Conv3d's oneDNN call on the CPU against F.conv3d (its twin) on random inputs, in inference
    (where it runs) and under autograd (where it hands over to nn.Conv3d); same state-dict keys."""
    from medsegmamba.models.layers import Conv3d, conv3

    torch.manual_seed(c_in)
    layer = Conv3d(c_in, c_out, 3, padding=1, groups=groups)
    x = torch.randn(1, c_in, *size)
    xin = x.contiguous(memory_format=torch.channels_last_3d) if channels_last else x
    want = torch.nn.functional.conv3d(x, layer.weight, layer.bias, padding=1, groups=groups)
    with torch.inference_mode():
        got = layer(xin)
    err = (got - want).abs().max().item()
    print(f"max error {err:.2e}")
    assert got.shape == want.shape and err < 1e-5
    x.requires_grad_(True)
    y = layer(x)
    (gx,) = torch.autograd.grad(y, x, torch.ones_like(y))
    (wx,) = torch.autograd.grad(torch.nn.functional.conv3d(x, layer.weight, layer.bias, padding=1, groups=groups),
                                x, torch.ones_like(y))
    assert torch.allclose(gx, wx, atol=1e-5)
    assert set(layer.state_dict()) == {"weight", "bias"} and isinstance(conv3(2, 8), Conv3d)


def test_conv3d_calls_onednn_on_the_cpu(monkeypatch):
    """The fast path is taken in inference on the CPU (else the test above compares F.conv3d with
    itself), and not under autograd."""
    from medsegmamba.models.layers import Conv3d

    if not torch.backends.mkldnn.is_available():
        pytest.skip("this torch has no oneDNN")
    calls = []
    real = torch.ops.aten.mkldnn_convolution

    class Spy:
        def __call__(self, *args):
            calls.append(args[0].shape)
            return real(*args)

    monkeypatch.setattr(torch.ops.aten, "mkldnn_convolution", Spy())
    layer = Conv3d(2, 4, 3, padding=1)
    with torch.inference_mode():
        layer(torch.randn(1, 2, 5, 5, 5))
    assert calls == [(1, 2, 5, 5, 5)]
    layer(torch.randn(1, 2, 5, 5, 5, requires_grad=True))
    assert len(calls) == 1
