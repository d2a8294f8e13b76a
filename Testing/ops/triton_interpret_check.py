"""Run the Triton selective scan through Triton's CPU interpreter and compare it with the reference.

Run as a script (a subprocess of test_scan_triton.py): TRITON_INTERPRET must be set before triton
is imported. Prints one JSON line {case: {output: [max_err, mean_err, max_ref, same_dtype]}}.
"""

import json
import os
import re

from medsegmamba.ops.triton.interpreter import enable

enable()  # before triton is imported

import torch  # noqa: E402

from medsegmamba.ops import selective_scan_ref  # noqa: E402
from medsegmamba.ops.triton import selective_scan as tscan  # noqa: E402

tscan.CHUNK = 8  # several chunks at tiny lengths


def case(batch, dim, groups, n, length, with_d, with_bias, non_contiguous, dtype, seed, block_d, kernel="seq",
         chunk_t=None, softplus=True, bwd_kernel=None, bwd_launch=None, bwd_segments=None):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)
    u, delta = r(batch, dim, length), r(batch, dim, length) - 1.0
    if not softplus:  # delta is then the step itself: keep it a plausible positive step
        delta = delta.abs() * 0.3
    A, B, C = -torch.rand(dim, n, generator=g) * 3 - 0.1, r(batch, groups, n, length), r(batch, groups, n, length)
    D, bias = (r(dim) if with_d else None), (r(dim) * 0.5 if with_bias else None)
    if non_contiguous:
        u, delta = (x.transpose(1, 2).contiguous().transpose(1, 2) for x in (u, delta))
        A = A.t().contiguous().t()
        B = B.permute(0, 3, 1, 2).contiguous().permute(0, 2, 3, 1)
        C = torch.stack([C, torch.zeros_like(C)], -1)[..., 0]  # stride 2 along L
    ins = [t if t is None else t.to(dtype).requires_grad_() for t in (u, delta, A, B, C, D, bias)]
    dy = r(batch, dim, length).to(dtype)
    y = tscan.selective_scan_triton(*ins, softplus, kernel=kernel, block_d=block_d, chunk_t=chunk_t,
                                    bwd_kernel=bwd_kernel, bwd_launch=bwd_launch, bwd_segments=bwd_segments)
    y_ref = selective_scan_ref(*[t if t is None else t.double() for t in ins], softplus).to(dtype)
    live = [t for t in ins if t is not None]
    grads = torch.autograd.grad(y, live, dy)
    grads_ref = torch.autograd.grad(y_ref, live, dy)
    names = [k for k, t in zip(("u", "delta", "A", "B", "C", "D", "delta_bias"), ins) if t is not None]
    out = {"y": (y, y_ref)} | {f"d{k}": gr for k, gr in zip(names, zip(grads, grads_ref))}
    return {k: [(a.double() - b.double()).abs().max().item(), (a.double() - b.double()).abs().mean().item(),
                b.double().abs().max().item(), a.dtype == b.dtype] for k, (a, b) in out.items()}


class _Spy:
    """Stands in for a kernel and records its launches."""

    def __init__(self, kernel, name, log):
        self.kernel, self.name, self.log = kernel, name, log

    def __getitem__(self, grid):
        self.log.append(self.name)
        return self.kernel[grid]


CASES = {
    # 6 channels per group with block_d 4: a masked half block; N=5 pads to 8; 37 steps = 5 chunks
    "full": (2, 12, 2, 5, 37, True, True, False, torch.float32, 0, 4),
    "bare_noncontig": (1, 8, 4, 4, 9, False, False, True, torch.float32, 1, None),
    # the chunked forward with T=4: two chunks per checkpoint; 37 steps end inside a chunk
    "chunked_full": (2, 12, 2, 5, 37, True, True, False, torch.float32, 2, 4, "chunked", 4),
    "chunked_bare_noncontig_nosoftplus": (1, 8, 4, 4, 9, False, False, True, torch.float32, 3, None, "chunked",
                                          None, False),
    # N=40 pads to 64, so the backward's channel block is 16 while the chunked forward takes 32:
    # checkpoints are written across layouts, and 24 channels leave the second block part empty
    "chunked_wide": (1, 48, 2, 40, 11, True, False, False, torch.float32, 4, None, "chunked"),
    "chunked_bf16": (1, 12, 2, 5, 19, True, True, False, torch.bfloat16, 5, 4, "chunked", 8),
    # kernel=None: the forward comes from $MEDSEGMAMBA_TRITON_FWD, set below
    "chunked_by_env": (1, 8, 2, 3, 10, True, True, False, torch.float32, 6, None, None),
}

# The chunked backward, T steps at once; (arguments of `case`, keyword arguments).
BWD_CASES = {
    # after the sequential forward (block_d 4): T=4, two tiles per checkpoint; 37 steps end inside a tile
    "bwd_chunked_full": ((2, 12, 2, 5, 37, True, True, False, torch.float32, 7, 4, "seq"),
                         dict(bwd_kernel="chunked", bwd_launch=(4, 4, None))),
    # after the chunked forward (its block_d 8) with the backward's block_d 4: checkpoints across
    # layouts; 6 channels per group leave the second block part empty; T=2
    "bwd_chunked_after_chunked": ((1, 12, 2, 3, 21, True, False, False, torch.float32, 8, None, "chunked", 4),
                                  dict(bwd_kernel="chunked", bwd_launch=(4, 2, 1))),
    "bwd_chunked_bare_noncontig_nosoftplus": ((1, 8, 4, 4, 9, False, False, True, torch.float32, 9, None, "chunked",
                                               None, False), dict(bwd_kernel="chunked")),
    "bwd_chunked_bf16": ((1, 12, 2, 5, 19, True, True, False, torch.bfloat16, 10, 4, "chunked", 8),
                         dict(bwd_kernel="chunked", bwd_launch=(None, 4, None))),
    # bwd_kernel=None and $MEDSEGMAMBA_TRITON_BWD unset: the default backward, "auto", which takes the
    # parallel one on a grid this small (4 programs)
    "bwd_auto_by_default": ((1, 8, 2, 3, 10, True, True, False, torch.float32, 11, None, None), {}),
    # $MEDSEGMAMBA_TRITON_BC=partial (names with _partial): dB, dC summed over channel blocks
    # after the kernel; 6 channels per group in blocks of 4 and of 2: 2 and 3 slices to sum
    "bwd_chunked_full_partial": ((2, 12, 2, 5, 37, True, True, False, torch.float32, 12, 4, "seq"),
                                 dict(bwd_kernel="chunked", bwd_launch=(4, 4, None))),
    "bwd_chunked_partial_bf16": ((1, 12, 2, 5, 19, True, True, False, torch.bfloat16, 13, 2, "chunked", 8),
                                 dict(bwd_kernel="chunked", bwd_launch=(2, 4, None))),
    # the segment-parallel backward (segments of checkpoint chunks at once, from carried adjoints;
    # tiny grids get a segment per chunk): after the sequential forward, 37 steps = 5 chunks, the
    # last one partly used and ending inside a tile
    "bwd_parallel_full": ((2, 12, 2, 5, 37, True, True, False, torch.float32, 14, 4, "seq"),
                          dict(bwd_kernel="parallel", bwd_launch=(4, 4, None))),
    # 2 segments of 5 chunks: 3 chunks and 2, each walked chunk by chunk
    "bwd_parallel_two_segments": ((2, 12, 2, 5, 37, True, True, False, torch.float32, 20, 4, "chunked"),
                                  dict(bwd_kernel="parallel", bwd_launch=(4, 4, None), bwd_segments=2)),
    # after the chunked forward; checkpoints across layouts; a part-empty channel block; T=2
    "bwd_parallel_after_chunked": ((1, 12, 2, 3, 21, True, False, False, torch.float32, 15, None, "chunked", 4),
                                   dict(bwd_kernel="parallel", bwd_launch=(4, 2, 1))),
    "bwd_parallel_bare_noncontig_nosoftplus": ((1, 8, 4, 4, 9, False, False, True, torch.float32, 16, None,
                                                "chunked", None, False), dict(bwd_kernel="parallel")),
    # one chunk only (8 steps): nothing is carried
    "bwd_parallel_one_chunk": ((2, 8, 2, 4, 8, True, True, False, torch.float32, 17, None, "chunked"),
                               dict(bwd_kernel="parallel")),
    "bwd_parallel_partial_bf16": ((1, 12, 2, 5, 19, True, True, False, torch.bfloat16, 18, 2, "chunked", 8),
                                  dict(bwd_kernel="parallel", bwd_launch=(2, 4, None))),
    # T=8, a whole chunk per tile: the carried adjoint decays through exp(A sum(delta)) over each
    # chunk (about e^-7 for the strongest state here), which must match the step-by-step products
    "bwd_parallel_chunk_tiles": ((1, 8, 2, 4, 40, True, True, False, torch.float32, 19, None, "chunked"),
                                  dict(bwd_kernel="parallel", bwd_launch=(4, 8, None))),
}
# The cases above run the tile body $MEDSEGMAMBA_TRITON_BWD_VARIANT=steps (the tile's steps
# unrolled); these (names with _scan) run the default one, scans over (T, N, D) tiles.
SCAN_CASES = {
    "bwd_chunked_full_scan": BWD_CASES["bwd_chunked_full"],
    "bwd_chunked_scan_partial_bf16": BWD_CASES["bwd_chunked_partial_bf16"],
    "bwd_parallel_two_segments_scan": BWD_CASES["bwd_parallel_two_segments"],
    "bwd_parallel_scan_partial_bf16": BWD_CASES["bwd_parallel_partial_bf16"],
}
BWD_CASES |= SCAN_CASES
# The default body with each channel block's states split over 2 or 4 programs ($MEDSEGMAMBA_TRITON_BWD_SPLIT,
# names with _split2/_split4): N=5 pads to 8, so the last program's states are part or wholly padding
SPLIT_CASES = {
    "bwd_chunked_full_scan_split2": BWD_CASES["bwd_chunked_full"],
    "bwd_chunked_scan_split2_partial_bf16": BWD_CASES["bwd_chunked_partial_bf16"],
    "bwd_chunked_after_chunked_scan_split4": BWD_CASES["bwd_chunked_after_chunked"],
    "bwd_chunked_bare_noncontig_nosoftplus_scan_split2": BWD_CASES["bwd_chunked_bare_noncontig_nosoftplus"],
    # the parallel backward keeps its states whole whatever the variable says
    "bwd_parallel_two_segments_scan_split2": BWD_CASES["bwd_parallel_two_segments"],
}
BWD_CASES |= SPLIT_CASES
# rerun with every fresh buffer full of NaN (below): both bodies, both backwards, padded states
NAN_MEMORY_CASES = ["bwd_chunked_scan_partial_bf16", "bwd_chunked_partial_bf16", "bwd_parallel_scan_partial_bf16",
                    "bwd_chunked_after_chunked_scan_split4",
                    "bwd_parallel_two_segments_scan", "bwd_chunked_full"]


def variant(name):
    """The tile body a case runs, by its name."""
    return "scan" if "_scan" in name else "steps"


def set_env(name):
    """$MEDSEGMAMBA_TRITON_BC, _BWD_VARIANT and _BWD_SPLIT of a case, by its name."""
    os.environ["MEDSEGMAMBA_TRITON_BC"] = "partial" if "_partial" in name else "atomic"
    os.environ["MEDSEGMAMBA_TRITON_BWD_VARIANT"] = variant(name)
    split = re.search(r"_split(\d)", name)
    os.environ["MEDSEGMAMBA_TRITON_BWD_SPLIT"] = split.group(1) if split else "1"


if __name__ == "__main__":
    launched, launched_bwd = [], []
    tscan._scan_fwd_kernel = _Spy(tscan._scan_fwd_kernel, "seq", launched)
    tscan._scan_fwd_chunked_kernel = _Spy(tscan._scan_fwd_chunked_kernel, "chunked", launched)
    tscan._scan_bwd_kernel = _Spy(tscan._scan_bwd_kernel, "seq", launched_bwd)
    tscan._scan_bwd_chunked_kernel = _Spy(tscan._scan_bwd_chunked_kernel, "chunked", launched_bwd)
    tscan._scan_bwd_steps_kernel = _Spy(tscan._scan_bwd_steps_kernel, "steps", launched_bwd)
    tscan._scan_bwd_local_kernel = _Spy(tscan._scan_bwd_local_kernel, "local", launched_bwd)
    tscan._scan_bwd_carry_kernel = _Spy(tscan._scan_bwd_carry_kernel, "carry", launched_bwd)
    os.environ["MEDSEGMAMBA_TRITON_FWD"] = "chunked"
    results = {"launched": {}, "launched_bwd": {}}
    for name, (args, kwargs) in [(k, (v, {})) for k, v in CASES.items()] + list(BWD_CASES.items()):
        del launched[:], launched_bwd[:]
        # the forward cases check the sequential backward, chosen through the environment; the
        # backward cases name the chunked one, or leave it to the default
        if name in CASES:
            os.environ["MEDSEGMAMBA_TRITON_BWD"] = "seq"
        else:
            os.environ.pop("MEDSEGMAMBA_TRITON_BWD", None)
        set_env(name)
        results[name] = case(*args, **kwargs)
        results["launched"][name], results["launched_bwd"][name] = list(launched), list(launched_bwd)
    # the sibling that must fail: the parallel backward with the adjoints carried between segments zeroed
    carries = tscan._segment_carries
    tscan._segment_carries = lambda *a, **k: torch.zeros_like(carries(*a, **k))
    args, kwargs = BWD_CASES["bwd_parallel_two_segments"]
    set_env("bwd_parallel_two_segments_scan")  # the default body
    results["bwd_parallel_carries_zeroed"] = case(*args, **kwargs)
    tscan._segment_carries = carries
    # fresh buffers full of NaN (torch.empty hands back whatever memory held): a kernel that reads
    # an element no kernel wrote, such as a padded state of a checkpoint (N = 5 here, blocks of 8),
    # then returns NaN instead of passing by luck
    empty = torch.empty
    torch.empty = lambda *a, **k: empty(*a, **k).fill_(float("nan"))
    for name in NAN_MEMORY_CASES:
        args, kwargs = BWD_CASES[name]
        set_env(name)
        results[f"nan_memory_{name}"] = case(*args, **kwargs)
    torch.empty = empty
    print(json.dumps(results))
