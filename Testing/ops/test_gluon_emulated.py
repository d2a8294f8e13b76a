"""The Gluon kernels (scan_gluon.py) on the CPU through gluon_emulator: first the emulator's own
semantics on tiny kernels, then the walk and the backward against float64 references, in the cases
of the GPU tests (test_scan_along_paths.py, test_scan_triton.py: `pytest -m gpu`), which remain the
check of what the emulator leaves out (layouts, barriers)."""

import importlib.util

import pytest
import torch

from medsegmamba.ops import selective_scan_paths, selective_scan_ref

# the GPU tests' inputs and references (pytest puts this folder on the path)
from test_scan_along_paths import deltas_in_kernel_case, has_gluon, reference_gradients, relative_errors, walked_inputs

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None or not has_gluon(),
                                reason="needs Triton with Gluon")

if has_gluon():
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl

    from medsegmamba.ops.triton import scan_gluon
    from medsegmamba.ops.triton import selective_scan as ts
    from medsegmamba.ops.triton.gluon_emulator import EmulationError, emulate

    @gluon.jit
    def _copy_kernel(x_ptr, out_ptr, q_ptr, r_ptr, n, BLOCK: gl.constexpr):
        lay: gl.constexpr = gl.BlockedLayout([1], [32], [gl.num_warps()], [0])
        offs = gl.program_id(0) * BLOCK + gl.arange(0, BLOCK, layout=lay)
        ok = offs < n
        x = gl.load(x_ptr + offs, mask=ok, other=-1.0)
        gl.store(out_ptr + offs, x * 2.0, mask=ok)
        gl.store(q_ptr + offs, (offs - 5) // 3, mask=ok)
        gl.store(r_ptr + offs, (offs - 5) % 3, mask=ok)

    @gluon.jit
    def _unmasked_kernel(x_ptr, out_ptr, BLOCK: gl.constexpr):
        lay: gl.constexpr = gl.BlockedLayout([1], [32], [gl.num_warps()], [0])
        offs = gl.arange(0, BLOCK, layout=lay)
        gl.store(out_ptr + offs, gl.load(x_ptr + offs))

    @gluon.jit
    def _shared_kernel(x_ptr, rows_ptr, flat_ptr, col_ptr, R: gl.constexpr, C: gl.constexpr, SKIP_LAST: gl.constexpr):
        # a (R, C) tile into shared memory row-major; read back a row at a time through a rank-1
        # view, and whole through a flat one; and the same tile stored column-major, seen flat
        lay: gl.constexpr = gl.BlockedLayout([1, 1], [4, 8], [gl.num_warps(), 1], [1, 0])
        row: gl.constexpr = gl.SliceLayout(0, lay)
        flat: gl.constexpr = gl.BlockedLayout([1], [32], [gl.num_warps()], [0])
        r = gl.arange(0, R, layout=gl.SliceLayout(1, lay))
        c = gl.arange(0, C, layout=row)
        x = gl.load(x_ptr + r[:, None] * C + c[None, :])
        by_row = gl.allocate_shared_memory(gl.float32, [R, C], gl.SwizzledSharedLayout(1, 1, 1, [1, 0]))
        rows = by_row._reinterpret(gl.float32, [R, C], gl.SwizzledSharedLayout(1, 1, 1, [0]))
        if SKIP_LAST:  # the last row never written
            for i in gl.static_range(R - 1):
                rows.index(i).store(gl.sum(gl.where(r[:, None] == i, x, 0.0), axis=0))
        else:
            by_row.store(x)
        for i in gl.static_range(R):
            gl.store(rows_ptr + i * C + c, rows.index(i).load(row))
        everything = by_row._reinterpret(gl.float32, [R * C], gl.SwizzledSharedLayout(1, 1, 1, [0]))
        gl.store(flat_ptr + gl.arange(0, R * C, layout=flat), everything.load(flat))
        by_col = gl.allocate_shared_memory(gl.float32, [R, C], gl.SwizzledSharedLayout(1, 1, 1, [0, 1]))
        by_col.store(x)
        col_flat = by_col._reinterpret(gl.float32, [R * C], gl.SwizzledSharedLayout(1, 1, 1, [0]))
        gl.store(col_ptr + gl.arange(0, R * C, layout=flat), col_flat.load(flat))


def test_emulator_follows_tritons_semantics():
    # masked loads take `other`, masked stores leave memory as it was, integer // and % truncate
    # (C's, Triton's) rather than floor (Python's, torch's)
    x = torch.arange(10, dtype=torch.float32)
    out = torch.full((16,), 7.0)
    q, r = torch.zeros(16, dtype=torch.int32), torch.zeros(16, dtype=torch.int32)
    emulate(_copy_kernel)[(2,)](x, out, q, r, 10, BLOCK=8, num_warps=1)
    assert torch.equal(out[:10], x * 2) and torch.equal(out[10:], torch.full((6,), 7.0))
    offs = torch.arange(10) - 5
    assert torch.equal(q[:10], torch.div(offs, 3, rounding_mode="trunc").int())
    assert torch.equal(r[:10], torch.fmod(offs, 3).int())
    assert q[0] == -1 and r[0] == -2  # Python's floor would give -2 and 1


def test_emulator_names_an_access_out_of_bounds():
    with pytest.raises(EmulationError, match=r"load of x_ptr at offsets 0\.\.15, outside its 10 elements"):
        emulate(_unmasked_kernel)[(1,)](torch.zeros(10), torch.zeros(16), BLOCK=16, num_warps=1)
    with pytest.raises(EmulationError, match=r"store of out_ptr at offsets 0\.\.15, outside its 12 elements"):
        emulate(_unmasked_kernel)[(1,)](torch.zeros(16), torch.zeros(12), BLOCK=16, num_warps=1)
    with pytest.raises(TypeError, match="not a @gluon.jit"):
        emulate(lambda: None)


@pytest.mark.parametrize("skip_last", [False, True])
def test_emulator_addresses_shared_memory_as_the_gpu_does(skip_last):
    R, C = 4, 8
    x = torch.randn(R, C)
    rows, flat, col = torch.zeros(R, C), torch.zeros(R * C), torch.zeros(R * C)
    emulate(_shared_kernel)[(1,)](x, rows, flat, col, R=R, C=C, SKIP_LAST=skip_last, num_warps=1)
    assert torch.equal(col, x.T.reshape(-1))  # order [0, 1]: the rows fastest
    if not skip_last:
        assert torch.equal(rows, x) and torch.equal(flat, x.reshape(-1))
    else:  # shared memory starts as NaN: a row nobody wrote is not silently zero
        assert torch.equal(rows[:-1], x[:-1]) and torch.isnan(rows[-1]).all()
        assert torch.isnan(flat[-C:]).all() and torch.equal(flat[:-C], x[:-1].reshape(-1))


# --- the scan's kernels, against float64


@pytest.fixture
def emulated(monkeypatch):
    """scan_gluon's kernels replaced by their emulation, and the walked route allowed on the CPU."""
    monkeypatch.setattr(scan_gluon, "scan_paths_fwd_kernel", emulate(scan_gluon.scan_paths_fwd_kernel))
    monkeypatch.setattr(scan_gluon, "scan_bwd_kernel", emulate(scan_gluon.scan_bwd_kernel))
    monkeypatch.setattr(ts, "_check_device", lambda *tensors: None)
    for var in ("MEDSEGMAMBA_PATHS", ts.GLUON_BWD_ENV_VAR, ts.BC_ENV_VAR):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("seed,batch,groups,dg,n,length,launch", [
    (0, 2, 3, 40, 12, 131, None),                  # channels and states not multiples of the blocks, L of no chunk
    (1, 1, 2, 64, 64, 70, None),                   # the paper's N, a program's 64 channels
    (2, 3, 2, 16, 16, 27, (None, 2, 1, 16, 1)),    # another layout of the same state
    (3, 1, 1, 8, 5, 1, None),                      # one step
])
def test_gluon_walk_matches_the_definition(emulated, dtype, seed, batch, groups, dg, n, length, launch):
    u, delta, A, B, C, paths, D, bias = walked_inputs(batch, groups, dg, n, length, seed, dtype)
    ref_in = [t.double() for t in (u, delta, A, B, C, D, bias)]
    for with_d in (True, False):
        kw = dict(D=D, delta_bias=bias) if with_d else dict(D=None, delta_bias=None)
        got = ts._walk_gluon(u, delta, A, B, C, paths.to(torch.int32), kw["D"], kw["delta_bias"], True, launch)
        want = selective_scan_paths(*ref_in[:5], paths, *(ref_in[5:] if with_d else (None, None)), impl="ref")
        assert (got.double() - want).abs().max() < 2e-4 * max(1.0, want.abs().max().item()), kw


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("seed,batch,groups,dg,n,length", [
    (0, 2, 3, 40, 12, 131),      # channels and states not multiples of the blocks, L of no chunk
    (1, 1, 2, 32, 64, 300),      # the paper's N, five chunks, the last of no whole sub-chunk
    (2, 1, 2, 16, 16, 1),        # one step
])
@pytest.mark.parametrize("delta_in", ["outside", "kernel"])
def test_walked_gradients_match_float64(emulated, dtype, seed, batch, groups, dg, n, length, delta_in,
                                        monkeypatch):
    # selective_scan_paths_triton_grad: the Gluon walk leaves its checkpoints, the Gluon backward
    # follows the paths, delta's bias and softplus applied around it or in it
    monkeypatch.setenv("MEDSEGMAMBA_TRITON_WALK", "gluon")
    monkeypatch.setenv("MEDSEGMAMBA_TRITON_BWD_DELTA", delta_in)
    u, delta, A, B, C, paths, D, bias = walked_inputs(batch, groups, dg, n, length, seed, dtype)
    dy = torch.randn(batch, length, groups, dg, generator=torch.Generator().manual_seed(seed + 7))
    inputs = (u, delta, A, B, C, D, bias)
    y_ref, want = reference_gradients(inputs, paths, dy)
    ins = [t.clone().requires_grad_() for t in inputs]
    y = ts.selective_scan_paths_triton_grad(*ins[:5], paths, D=ins[5], delta_bias=ins[6])
    got = torch.autograd.grad((y * dy).sum(), ins)
    assert (y.detach().double() - y_ref).abs().max() < 2e-4 * max(1.0, y_ref.abs().max().item())
    tol = 2e-4 if dtype == torch.float32 else 2e-2
    errors = relative_errors(got, want, ("u", "delta", "A", "B", "C", "D", "bias"))
    assert max(errors.values()) < tol, errors


@pytest.mark.parametrize("bias,softplus", [(False, True), (True, False), (False, False)])
def test_walked_gradients_with_deltas_bias_and_softplus_in_the_kernel(emulated, bias, softplus, monkeypatch):
    monkeypatch.setenv("MEDSEGMAMBA_TRITON_WALK", "gluon")
    monkeypatch.setenv("MEDSEGMAMBA_TRITON_BWD_DELTA", "kernel")
    inputs, paths, dy, names, want = deltas_in_kernel_case(bias, softplus, 75)
    ins = [t.clone().requires_grad_() for t in inputs]
    y = ts.selective_scan_paths_triton_grad(*ins[:5], paths, D=ins[5], delta_bias=ins[6] if bias else None,
                                            delta_softplus=softplus)
    got = torch.autograd.grad((y * dy).sum(), ins)
    errors = relative_errors(got, want, names)
    assert max(errors.values()) < 2e-4, errors


def _checkpoints(u, dl, A, B, groups, block_d, block_n):
    """The states at every CHUNK-th step of the (B, D, L) scan, in float64, laid out as the
    forward kernels leave them for the backward: (programs, chunks, block_d, block_n), programs
    (batch, group, channel block), zeros past the channels and states."""
    batch, dim, length = u.shape
    dg, n = dim // groups, A.shape[1]
    blocks, chunks = -(-dg // block_d), -(-length // ts.CHUNK)
    ckpt = torch.zeros(batch, groups, blocks * block_d, chunks, block_n, dtype=torch.float64)
    h = torch.zeros(batch, dim, n, dtype=torch.float64)
    Bd = B.double().repeat_interleave(dg, dim=1)  # (batch, dim, n, L)
    for t in range(length):
        if t % ts.CHUNK == 0:
            ckpt[:, :, :dg, t // ts.CHUNK, :n] = h.view(batch, groups, dg, n)
        dl_t = dl[:, :, t].double()
        h = torch.exp(dl_t[..., None] * A.double()) * h + (dl_t * u[:, :, t].double())[..., None] * Bd[..., t]
    ckpt = ckpt.view(batch, groups, blocks, block_d, chunks, block_n).permute(0, 1, 2, 4, 3, 5)
    return ckpt.reshape(batch * groups * blocks, chunks, block_d, block_n).float().contiguous()


@pytest.mark.parametrize("batch,dim,groups,n,length,dtype,launch,bc", [
    (2, 40, 2, 12, 131, torch.float32, None, "atomic"),         # channels and states not whole blocks
    (1, 48, 1, 64, 300, torch.float32, None, "partial"),        # 3 channel blocks, 5 chunks, the last partly
    (1, 64, 2, 64, 70, torch.bfloat16, None, "atomic"),
    (1, 64, 1, 64, 70, torch.float32, "4,4,4,4,128,16", "atomic"),  # another launch: 4 channels a thread, 16 steps
    (1, 40, 1, 64, 70, torch.float32, "4,4,4,4,168,8", "partial"),   # the benchmarks' other launch
    (1, 20, 1, 64, 70, torch.float32, "2,8,1,4,128,4", "atomic"),    # 8 lanes over the states, 4-step sub-chunks
])
def test_gluon_backward_matches_the_reference(emulated, batch, dim, groups, n, length, dtype, launch, bc,
                                              monkeypatch):
    # the (B, D, L) layouts (`_launch_bwd_gluon`, selective_scan_triton's bwd_kernel="gluon"); its
    # checkpoints here come from a float64 loop (its forward is a Triton kernel, not Gluon)
    if launch:
        monkeypatch.setenv(ts.GLUON_BWD_ENV_VAR, launch)
    monkeypatch.setenv(ts.BC_ENV_VAR, bc)
    g = torch.Generator().manual_seed(batch * 7 + n)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    u, dl = r(batch, dim, length).to(dtype), torch.nn.functional.softplus(r(batch, dim, length) - 1).to(dtype)
    A, D = -torch.rand(dim, n, generator=g) * 3 - 0.1, r(dim)
    B, C = r(batch, groups, n, length).to(dtype), r(batch, groups, n, length).to(dtype)
    dy = r(batch, dim, length)
    ref_in = [t.double().requires_grad_() for t in (u, dl, A, B, C, D)]
    y_ref = selective_scan_ref(*ref_in, delta_softplus=False)
    want = torch.autograd.grad((y_ref * dy.double()).sum(), ref_in)
    block_d, block_n = ts._gluon_bwd_config(n)[4:6]
    ckpt = _checkpoints(u, dl, A, B, groups, block_d, block_n)
    got = ts._launch_bwd_gluon(dy, u, dl, A, B, C, D, None, False, ckpt)[:6]
    tol = 2e-4 if dtype == torch.float32 else 2e-2
    errors = relative_errors(got, want, ("u", "delta", "A", "B", "C", "D"))
    assert max(errors.values()) < tol, errors


@pytest.mark.parametrize("d_state", [8, 64])
def test_ss3d_trains_through_the_gluon_kernels_as_through_the_reference(emulated, d_state, monkeypatch):
    # the model's own call of the walked route (SS3D.mix: B and C as views of one projection, delta
    # from the dt projection, A from A_logs): output and every parameter's gradient against the
    # gathered PyTorch reference, in float32
    from medsegmamba.models.ss3d import SS3D

    ops_scan = importlib.import_module("medsegmamba.ops.selective_scan")  # the module, not its function

    monkeypatch.setenv("MEDSEGMAMBA_TRITON_WALK", "gluon")
    monkeypatch.setattr(ops_scan, "interpreting", lambda: True)  # "triton" on CPU tensors
    monkeypatch.setattr(ts, "paths_grad_available", lambda u, delta, A: True)
    launched = []

    class Counted:  # the emulated kernel, noting its launches
        def __init__(self, name, kernel):
            self.name, self.kernel = name, kernel

        def __getitem__(self, grid):
            launched.append(self.name)
            return self.kernel[grid]

    for name in ("scan_paths_fwd_kernel", "scan_bwd_kernel"):
        monkeypatch.setattr(scan_gluon, name, Counted(name, getattr(scan_gluon, name)))
    torch.manual_seed(0)
    block = SS3D(d_model=16, d_state=d_state, size=4)
    x = torch.randn(2, 4, 4, 4, 16)
    results = {}
    for impl in ("ref", "triton"):
        block.scan_impl = impl
        block.zero_grad()
        y = block(x)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        results[impl] = (y.detach(), {k: p.grad.clone() for k, p in block.named_parameters()})
    assert launched == ["scan_paths_fwd_kernel", "scan_bwd_kernel"]  # the triton run's, one each
    (y_ref, g_ref), (y_tri, g_tri) = results["ref"], results["triton"]
    assert (y_tri - y_ref).abs().max() < 1e-4 * max(1.0, y_ref.abs().max().item())
    errors = relative_errors(g_tri.values(), g_ref.values(), list(g_ref))
    assert max(errors.values()) < 1e-4, errors
