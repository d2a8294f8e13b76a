"""SS3D's path scan (`selective_scan_paths`): the gathered reference against a step-by-step loop,
its errors and gradients on the CPU, and the Triton kernel through the interpreter."""

import importlib.util

import pytest
import torch

from medsegmamba.ops import selective_scan_paths


def naive(u, delta, A, B, C, paths, D, bias):
    """Float64, one group and one step at a time, straight from the definition."""
    u, delta, A, B, C, D, bias = (t.double() for t in (u, delta, A, B, C, D, bias))
    batch, length, dg = u.shape
    groups = paths.shape[0]
    y = torch.zeros(batch, length, groups, dg, dtype=torch.float64)
    for g in range(groups):
        ch = slice(g * dg, (g + 1) * dg)
        h = torch.zeros(batch, dg, A.shape[1], dtype=torch.float64)
        for t in range(length):
            p = int(paths[g, t])
            dl = torch.nn.functional.softplus(delta[:, g, p] + bias[ch])           # (Bt, Dg)
            h = torch.exp(dl[..., None] * A[ch]) * h + (dl * u[:, p])[..., None] * B[:, g, p, None, :]
            y[:, p, g] = (h * C[:, g, p, None, :]).sum(-1) + D[ch] * u[:, p]
    return y


def random_inputs(batch=2, groups=3, dg=4, n=5, length=11, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    paths = torch.stack([torch.randperm(length, generator=g) for _ in range(groups)])
    return (r(batch, length, dg), r(batch, groups, length, dg) - 1, -torch.rand(groups * dg, n, generator=g) * 3,
            r(batch, groups, length, n), r(batch, groups, length, n), paths, r(groups * dg), r(groups * dg))


def walked_inputs(batch, groups, dg, n, length, seed, dtype=torch.float32):
    """random_inputs with B and C as views of one projection (as SS3D's), then u, delta, B and C in
    dtype: the references see the inputs as the kernels get them, after their rounding."""
    u, delta, A, B, C, paths, D, bias = random_inputs(batch, groups, dg, n, length, seed)
    bc = torch.cat([B, C], -1).transpose(1, 2).contiguous().transpose(1, 2)
    u, delta, B, C = (t.to(dtype) for t in (u, delta, bc[..., :n], bc[..., n:]))
    return u, delta, A, B, C, paths, D, bias


def reference_gradients(inputs, paths, dy, softplus=True):
    """The gathered float64 reference on inputs (u, delta, A, B, C, D[, delta_bias]): y, and the
    gradients of sum(y * dy) for each input."""
    ref_in = [t.double().requires_grad_() for t in inputs]
    y = selective_scan_paths(*ref_in[:5], paths, D=ref_in[5], delta_bias=ref_in[6] if len(ref_in) > 6 else None,
                             delta_softplus=softplus, impl="ref")
    return y.detach(), torch.autograd.grad((y * dy.double()).sum(), ref_in)


def relative_errors(got, want, names):
    """name -> ||got - want|| / ||want||, in float64 on the CPU."""
    return {name: ((a.double().cpu() - b).norm() / b.norm().clamp_min(1e-12)).item()
            for name, a, b in zip(names, got, want)}


def deltas_in_kernel_case(bias, softplus, length):
    """The case of $MEDSEGMAMBA_TRITON_BWD_DELTA=kernel without a bias, or without softplus (SS3D
    passes both): inputs (u, delta, A, B, C, D[, delta_bias]), paths, dy, the inputs' names and the
    float64 reference's gradients."""
    u, delta, A, B, C, paths, D, delta_bias = random_inputs(2, 3, 40, 12, length, seed=4)
    if not softplus:  # a step as it is, delta + bias, must be positive (a negative one grows e^(-dl A))
        delta, delta_bias = delta.abs() * 0.2, delta_bias.abs() * 0.1
    inputs = (u, delta, A, B, C, D) + ((delta_bias,) if bias else ())
    names = ("u", "delta", "A", "B", "C", "D", "bias")[:len(inputs)]
    dy = torch.randn(2, length, 3, 40, generator=torch.Generator().manual_seed(11))
    return inputs, paths, dy, names, reference_gradients(inputs, paths, dy, softplus)[1]


@pytest.mark.parametrize("seed,length", [(0, 11), (1, 1), (2, 70)])
def test_reference_matches_the_definition(seed, length):
    args = random_inputs(seed=seed, length=length)
    y = selective_scan_paths(*args[:6], D=args[6], delta_bias=args[7], impl="ref")
    assert y.dtype == torch.float32 and y.shape == (2, length, 3, 4)
    assert torch.allclose(y.double(), naive(*args), atol=1e-5, rtol=1e-5)


def test_paths_matter():
    u, delta, A, B, C, paths, D, bias = random_inputs(seed=3)
    y = selective_scan_paths(u, delta, A, B, C, paths, D, bias, impl="ref")
    y_flipped = selective_scan_paths(u, delta, A, B, C, paths.flip(1), D, bias, impl="ref")
    assert (y - y_flipped).abs().max() > 1e-3


def test_gradients_flow_through_the_gathers():
    args = [t.double().requires_grad_() if t.is_floating_point() else t for t in random_inputs(length=6, seed=4)]
    u, delta, A, B, C, paths, D, bias = args
    y = selective_scan_paths(u, delta, A, B, C, paths, D, bias, impl="ref")
    grads = torch.autograd.grad(y.sum(), [u, delta, A, B, C, D, bias])
    ref = torch.autograd.grad(naive(u, delta, A, B, C, paths, D, bias).sum(), [u, delta, A, B, C, D, bias])
    for a, b in zip(grads, ref):  # the scan runs in float32
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("change,match", [
    (lambda a: a.__setitem__(0, a[0][None]), r"u must be \(batch, L, Dg\)"),
    (lambda a: a.__setitem__(5, a[5][:, :-1]), r"paths must be integer \(G, L=11\)"),
    (lambda a: a.__setitem__(5, a[5].float()), r"paths must be integer"),
    (lambda a: a.__setitem__(1, a[1][:, :2]), r"delta must be \(batch=2, G=3, L=11, Dg=4\)"),
    (lambda a: a.__setitem__(2, a[2][:-1]), r"A must be \(G\*Dg=12, N\)"),
    (lambda a: a.__setitem__(4, a[4][..., :2]), r"C must be \(batch=2, G=3, L=11, N=5\)"),
    (lambda a: a.__setitem__(6, a[6][:-1]), r"D must be \(12,\)"),
])
def test_bad_shapes_are_named(change, match):
    args = list(random_inputs())
    change(args)
    with pytest.raises(ValueError, match=match):
        selective_scan_paths(*args[:6], D=args[6], delta_bias=args[7], impl="ref")


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_triton_path_kernel_matches_the_reference(run_check):
    res = run_check("triton_paths_check.py")
    print(res)
    for case in ("paths", "paths_strided_bc", "paths_bf16"):
        assert res[case] < 1e-5, case
    assert res["paths_ignored"] > 0.1  # a kernel that walked the steps in order would fail here
    assert max(res["ss3d"]) < 1e-5      # SS3D through the kernel = the authors' layout through the reference
    walked_calls, gathered_calls, diff = res["route"]  # $MEDSEGMAMBA_PATHS picks the route
    assert (walked_calls, gathered_calls) == (1, 0) and diff < 1e-5


def test_paths_route_is_checked(monkeypatch):
    from medsegmamba.ops.selective_scan import paths_route

    monkeypatch.delenv("MEDSEGMAMBA_PATHS", raising=False)
    assert paths_route() == "walked"
    monkeypatch.setenv("MEDSEGMAMBA_PATHS", "gathered")
    assert paths_route() == "gathered"
    monkeypatch.setenv("MEDSEGMAMBA_PATHS", "sideways")
    with pytest.raises(ValueError, match=r"\$MEDSEGMAMBA_PATHS must be one of walked, gathered, got 'sideways'"):
        paths_route()


def has_gluon():
    try:
        from triton.experimental.gluon import language  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("n,dim_group,want", [
    (64, 1024, (16, 4, 2, 4, 4)),   # the paper's SS3D: 64 channels a program, 4 lanes share the states
    (16, 1024, (16, 1, 1, 4, 4)),   # few states: a thread holds them all, of one channel
    (12, 40, (16, 1, 1, 4, 2)),     # N padded to 16; few channels, fewer warps
    (64, 8, (16, 4, 2, 4, 1)),
])
def test_gluon_walk_configuration(n, dim_group, want):
    pytest.importorskip("triton")
    from medsegmamba.ops.triton.selective_scan import _gluon_walk_config

    got = _gluon_walk_config(dim_group, n)
    assert got == want
    spt_n, tpw_n, spt_d, _, warps = got
    assert spt_n * tpw_n >= n and 32 % tpw_n == 0
    assert _gluon_walk_config(dim_group, n, (None, None, None, 16, 2))[3:] == (16, 2)
    with pytest.raises(ValueError, match=r"SPT_N \* TPW_N >= N=64"):
        _gluon_walk_config(dim_group, 64, (4, 4, None, None, None))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or not has_gluon(), reason="needs a CUDA device and Triton's Gluon")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("seed,batch,groups,dg,n,length,launch", [
    (0, 2, 3, 40, 12, 131, None),                  # channels and states not multiples of the blocks, L of no chunk
    (1, 1, 8, 64, 64, 216, None),                  # the paper's N
    (2, 3, 2, 16, 16, 27, (None, 2, 1, 16, 1)),    # another layout of the same state
    (3, 1, 1, 8, 5, 1, None),                      # one step
])
def test_gluon_walk_matches_the_definition(dtype, seed, batch, groups, dg, n, length, launch):
    from medsegmamba.ops.triton.selective_scan import selective_scan_paths_triton

    u, delta, A, B, C, paths, D, bias = walked_inputs(batch, groups, dg, n, length, seed, dtype)
    want = naive(u.float(), delta.float(), A, B.float(), C.float(), paths, D, bias)
    cuda = lambda t: t.cuda()  # noqa: E731
    with torch.inference_mode():
        for kw in (dict(D=D, delta_bias=bias), dict()):
            got = selective_scan_paths_triton(*map(cuda, (u, delta, A, B, C, paths)),
                                              **{k: cuda(v) for k, v in kw.items()}, kernel="gluon",
                                              gluon_launch=launch).cpu().double()
            ref = want if kw else naive(u.float(), delta.float(), A, B.float(), C.float(), paths,
                                        torch.zeros_like(D), torch.zeros_like(bias))
            assert (got - ref).abs().max() < 2e-4 * max(1.0, ref.abs().max().item()), kw


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or not has_gluon(), reason="needs a CUDA device and Triton's Gluon")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("seed,batch,groups,dg,n,length", [
    (0, 2, 3, 40, 12, 131),      # channels and states not multiples of the blocks, L of no chunk
    (1, 1, 8, 32, 64, 300),      # the paper's N, five chunks, the last of no whole sub-chunk
    (2, 1, 2, 16, 16, 1),        # one step
])
@pytest.mark.parametrize("walk,delta_in", [("chunked", "outside"), ("chunked", "kernel"), ("gluon", "outside"),
                                           ("gluon", "kernel")])
def test_walked_gradients_match_float64(dtype, seed, batch, groups, dg, n, length, walk, delta_in, monkeypatch):
    # SS3D's scan under autograd on the walked route (selective_scan_paths_triton_grad: the forward,
    # chunked or Gluon, leaves checkpoints and the Gluon backward follows the paths, delta's bias and
    # softplus applied around it or in it) against autograd through the gathered float64 reference
    from medsegmamba.ops.triton.selective_scan import paths_grad_available

    monkeypatch.delenv("MEDSEGMAMBA_PATHS", raising=False)
    monkeypatch.setenv("MEDSEGMAMBA_TRITON_WALK", walk)
    monkeypatch.setenv("MEDSEGMAMBA_TRITON_BWD_DELTA", delta_in)
    # these grids are too small for "auto" to take the Gluon backward (paths_grad_available)
    monkeypatch.setenv("MEDSEGMAMBA_TRITON_BWD", "gluon")
    u, delta, A, B, C, paths, D, bias = walked_inputs(batch, groups, dg, n, length, seed, dtype)
    assert paths_grad_available(u.cuda(), delta.cuda(), A.cuda())
    dy = torch.randn(batch, length, groups, dg, generator=torch.Generator().manual_seed(seed + 7))
    inputs = (u, delta, A, B, C, D, bias)
    y_ref, want = reference_gradients(inputs, paths, dy)
    gpu_in = [t.cuda().requires_grad_() for t in inputs]
    y = selective_scan_paths(*gpu_in[:5], paths.cuda(), D=gpu_in[5], delta_bias=gpu_in[6], impl="triton")
    assert y.grad_fn is not None and "Paths" in type(y.grad_fn).__name__  # the walked route, not the gathers
    got = torch.autograd.grad((y * dy.cuda()).sum(), gpu_in)
    assert (y.detach().cpu().double() - y_ref).abs().max() < 2e-4 * max(1.0, y_ref.abs().max().item())
    tol = 2e-4 if dtype == torch.float32 else 2e-2
    errors = relative_errors(got, want, ("u", "delta", "A", "B", "C", "D", "bias"))
    assert max(errors.values()) < tol, errors


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or not has_gluon(), reason="needs a CUDA device and Triton's Gluon")
@pytest.mark.parametrize("bias,softplus", [(False, True), (True, False), (False, False)])
def test_walked_gradients_with_deltas_bias_and_softplus_in_the_kernel(bias, softplus, monkeypatch):
    # $MEDSEGMAMBA_TRITON_BWD_DELTA=kernel (deltas_in_kernel_case)
    monkeypatch.delenv("MEDSEGMAMBA_PATHS", raising=False)
    monkeypatch.setenv("MEDSEGMAMBA_TRITON_BWD", "gluon")
    monkeypatch.setenv("MEDSEGMAMBA_TRITON_BWD_DELTA", "kernel")
    inputs, paths, dy, names, want = deltas_in_kernel_case(bias, softplus, 131)
    gpu_in = [t.cuda().requires_grad_() for t in inputs]
    y = selective_scan_paths(*gpu_in[:5], paths.cuda(), D=gpu_in[5], delta_bias=gpu_in[6] if bias else None,
                             delta_softplus=softplus, impl="triton")
    assert "Paths" in type(y.grad_fn).__name__
    got = torch.autograd.grad((y * dy.cuda()).sum(), gpu_in)
    errors = relative_errors(got, want, names)
    assert max(errors.values()) < 2e-4, errors


@pytest.fixture
def on_an_h100(monkeypatch):
    """selective_scan's Triton module as if on an H100 with Gluon: 132 multiprocessors."""
    pytest.importorskip("triton")
    from medsegmamba.ops.triton import selective_scan as ts

    monkeypatch.setattr(ts, "_multiprocessors", lambda index: 132)
    monkeypatch.setattr(ts, "interpreting", lambda: False)
    monkeypatch.setattr(ts, "_gluon_available", lambda: True)
    return ts


def test_walked_gradients_only_where_the_gluon_backward_runs(on_an_h100, monkeypatch):
    ts = on_an_h100
    monkeypatch.delenv("MEDSEGMAMBA_TRITON_BWD", raising=False)

    def meta(batch, dg, n, device="cuda"):  # u, delta, A as SS3D passes them, for 8 directions of L 1728
        return _Like(device, batch, 1728, dg), _Like(device, batch, 8, 1728, dg), _Like(device, 8 * dg, n)

    paper, small = meta(1, 1024, 64), meta(4, 128, 16)  # the default model's at its training batch
    assert ts.paths_grad_available(*paper)
    assert not ts.paths_grad_available(*small)  # its grid is too small for the Gluon backward's "auto"
    assert not ts.paths_grad_available(*meta(1, 1024, 64, "cpu"))
    monkeypatch.setenv("MEDSEGMAMBA_TRITON_BWD", "chunked")  # a backward that takes the gathered (B, D, L) layout
    assert not ts.paths_grad_available(*paper)
    monkeypatch.setenv("MEDSEGMAMBA_TRITON_BWD", "gluon")
    assert ts.paths_grad_available(*paper) and ts.paths_grad_available(*small)
    monkeypatch.setattr(ts, "_gluon_available", lambda: False)
    assert not ts.paths_grad_available(*paper)
    monkeypatch.setattr(ts, "_gluon_available", lambda: True)
    monkeypatch.setattr(ts, "interpreting", lambda: True)
    assert not ts.paths_grad_available(*paper)


class _Like:
    """A tensor's shape and device, without its memory (this machine may have no GPU)."""

    def __init__(self, device, *shape):
        self.shape = torch.Size(shape)
        self.device = torch.device(device, 0) if device == "cuda" else torch.device(device)


@pytest.mark.parametrize("env,compiling,where", [
    ("outside", False, "outside"), ("kernel", False, "kernel"), ("kernel", True, "kernel"),
    ("auto", False, "kernel"), ("auto", True, "outside"),
])
def test_walked_backward_applies_deltas_bias_and_softplus_where_asked(env, compiling, where, monkeypatch):
    # $MEDSEGMAMBA_TRITON_BWD_DELTA: "outside" hands the Gluon backward softplus(delta + bias) and
    # takes ddelta = ddl sigmoid(x), dbias its sum, here; "kernel" hands it delta and the bias and
    # takes its ddelta and dbias as they are; "auto" is "outside" where the forward ran under
    # torch.compile. The kernels' launches stand in (Gluon needs a GPU)
    pytest.importorskip("triton")
    from medsegmamba.ops.triton import scan_kernels  # noqa: F401
    from medsegmamba.ops.triton import selective_scan as ts

    monkeypatch.setenv("MEDSEGMAMBA_TRITON_WALK", "chunked")
    monkeypatch.setenv(ts.BWD_DELTA_ENV_VAR, env)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: compiling)

    class Kernel:
        def __getitem__(self, grid):
            return lambda *args, **kw: None

    monkeypatch.setattr(ts, "_scan_fwd_chunked_kernel", Kernel())
    u, delta, A, B, C, paths, D, bias = random_inputs(batch=2, groups=3, dg=8, n=4, length=5)
    g = torch.Generator().manual_seed(5)
    ddl, dbias_kernel = torch.randn(delta.shape, generator=g), torch.randn(24, generator=g)
    seen = {}

    def gluon_bwd(u_, dl, dy, A_, B_, C_, D_, ckpt, paths_, groups, delta_bias=None, softplus=False):
        seen.update(dl=dl, delta_bias=delta_bias, softplus=softplus)
        zeros = torch.zeros_like
        return (torch.zeros(2, 3, 5, 8), ddl, zeros(A_), zeros(B_), zeros(C_), zeros(D_), dbias_kernel)

    monkeypatch.setattr(ts, "_gluon_bwd", gluon_bwd)
    inputs = [t.requires_grad_() for t in (u, delta, A, B, C)]
    y = ts._SelectiveScanPathsTriton.apply(*inputs, paths.to(torch.int32), D.requires_grad_(),
                                           bias.requires_grad_(), True)
    y.sum().backward()
    x = delta.detach() + bias.detach().view(3, 1, 8)
    if where == "kernel":
        assert seen["dl"] is delta and seen["delta_bias"] is bias and seen["softplus"] is True
        assert torch.equal(delta.grad, ddl) and torch.equal(bias.grad, dbias_kernel)
    else:
        assert torch.allclose(seen["dl"], torch.nn.functional.softplus(x)) and seen["delta_bias"] is None
        assert seen["softplus"] is False
        assert torch.allclose(delta.grad, ddl * torch.sigmoid(x))
        assert torch.allclose(bias.grad, (ddl * torch.sigmoid(x)).sum((0, 2)).reshape(-1))


def test_auto_walk_takes_gluon_where_its_grid_fills_the_gpu(on_an_h100, monkeypatch):
    ts = on_an_h100
    cuda = torch.device("cuda", 0)
    # the paper's SS3D: 8 groups x 1024 channels / 64 a program = 128 programs a batch element
    assert ts._auto_walk_kernel(1, 8, 1024, 64, cuda) == "chunked"
    assert ts._auto_walk_kernel(2, 8, 1024, 64, cuda) == "gluon"
    assert ts._auto_walk_kernel(8, 8, 1024, 64, torch.device("cpu")) == "chunked"
    monkeypatch.setattr(ts, "_gluon_available", lambda: False)  # Triton without Gluon
    assert ts._auto_walk_kernel(8, 8, 1024, 64, cuda) == "chunked"
    monkeypatch.setenv("MEDSEGMAMBA_TRITON_WALK", "sideways")
    with pytest.raises(ValueError, match="MEDSEGMAMBA_TRITON_WALK"):
        ts._walk_kernel_name(None)


def test_auto_training_walk_takes_gluon_where_each_multiprocessor_gets_four_programs(on_an_h100, monkeypatch):
    ts = on_an_h100
    cuda = torch.device("cuda", 0)
    train = {"per_multiprocessor": ts._TRAIN_WALK_PROGRAMS}
    assert train["per_multiprocessor"] == 4
    # the paper's SS3D, 128 programs a batch element: 1,024 at batch 8, 512 at 4 (under 4 x 132)
    assert ts._auto_walk_kernel(8, 8, 1024, 64, cuda, **train) == "gluon"
    assert ts._auto_walk_kernel(4, 8, 1024, 64, cuda, **train) == "chunked"
    assert ts._auto_walk_kernel(2, 8, 1024, 64, cuda, **train) == "chunked"  # where inference's "auto" takes Gluon
    assert ts._auto_walk_kernel(8, 8, 1024, 64, torch.device("cpu"), **train) == "chunked"
    monkeypatch.setattr(ts, "_gluon_available", lambda: False)
    assert ts._auto_walk_kernel(8, 8, 1024, 64, cuda, **train) == "chunked"


@pytest.mark.parametrize("walk,rule,want", [("chunked", "gluon", "chunked"), ("gluon", "chunked", "gluon"),
                                            ("auto", "chunked", "chunked"), ("auto", "gluon", "gluon")])
def test_training_walk_leaves_the_backwards_checkpoints(walk, rule, want, monkeypatch):
    # Under autograd the walk ($MEDSEGMAMBA_TRITON_WALK; "auto" by its own rule, which stands in
    # here as `rule`) is launched with the checkpoints the Gluon backward reads: 16-channel
    # blocks of every group and batch element, a chunk of 64 steps each, N's power of two wide,
    # zeroed where the blocks are partly used. The launches stand in for the kernels (Gluon needs a GPU)
    pytest.importorskip("triton")
    from medsegmamba.ops.triton import scan_gluon, scan_kernels
    from medsegmamba.ops.triton import selective_scan as ts

    launched = {}

    class Kernel:
        def __init__(self, name):
            self.name = name

        def __getitem__(self, grid):
            return lambda *args, **kw: launched.update(name=self.name, grid=grid, args=args, kw=kw)

    monkeypatch.setattr(scan_gluon, "scan_paths_fwd_kernel", Kernel("gluon"))
    monkeypatch.setattr(ts, "_scan_fwd_chunked_kernel", Kernel("chunked"))
    monkeypatch.setenv("MEDSEGMAMBA_TRITON_WALK", walk)
    # training's rule stands in as `rule`; inference's would give "gluon"
    monkeypatch.setattr(ts, "_auto_walk_kernel",
                        lambda *args, per_multiprocessor=1: rule if per_multiprocessor == ts._TRAIN_WALK_PROGRAMS
                        else "gluon")
    u, delta, A, B, C, paths, D, bias = random_inputs(batch=2, groups=3, dg=40, n=12, length=131)
    y = ts._SelectiveScanPathsTriton.apply(u.requires_grad_(), delta, A, B, C, paths.to(torch.int32), D, bias, True)
    assert launched["name"] == want and y.shape == (2, 131, 3, 40)
    ckpt = launched["args"][9 if want == "gluon" else 8]
    assert ckpt.shape == (2 * 3 * 3, 3, 16, 16) and not ckpt.any()  # 40 channels, 12 states: padded, zeroed
    assert launched["kw"]["CKPT_BLOCK_D"] == 16 and launched["kw"]["STORE_CKPT"] is True
    assert y.grad_fn.saved_tensors[-1] is ckpt  # what the backward reads
