"""Batched tiling + aggregation against the slow numpy twin."""

import numpy as np
import pytest
import torch

from medsegmamba.pipeline import patches
from medsegmamba.pipeline.aggregate import aggregate, aggregate_ref


class ConvSoftmax(torch.nn.Module):
    """A small random network whose output depends on position in the patch (zero-padded conv)."""

    def __init__(self, classes=5, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = torch.nn.Conv3d(1, classes, 5, padding=2)

    def forward(self, x):
        return torch.softmax(self.conv(x) * 4, dim=1)


SWAP5 = [0, 2, 1, 4, 3]  # left/right swap of ConvSoftmax's 5 classes: background and two pairs


def _case(seed, shape=(16, 20, 12), patch=8, step=4):
    rng = np.random.default_rng(seed)
    block = rng.random(shape).astype(np.float32)
    return block, patches.patch_origins(shape, step, patch)


def _predict(model):
    def predict(patch):
        with torch.no_grad():
            return model(torch.from_numpy(np.ascontiguousarray(patch))[None, None].float())[0].double().numpy()

    return predict


@pytest.mark.parametrize("seed, batch_size", [(0, 1), (1, 3), (2, 7), (3, 64)])
def test_aggregate_matches_numpy_twin(seed, batch_size):
    model = ConvSoftmax(seed=seed)
    block, origins = _case(seed)
    fast = aggregate(model, torch.from_numpy(block), origins, batch_size=batch_size, patch=8).numpy()
    slow = aggregate_ref(_predict(model), block, origins, patch=8)
    print(f"seed {seed}: {(fast != slow).sum()} of {fast.size} voxels differ, {len(origins)} patches")
    np.testing.assert_array_equal(fast, slow)


def test_twin_tells_a_missing_patch_apart():
    """Sibling: dropping one patch from the slow path must change the answer somewhere."""
    model = ConvSoftmax(seed=4)
    block, origins = _case(4)
    fast = aggregate(model, torch.from_numpy(block), origins, batch_size=4, patch=8).numpy()
    slow = aggregate_ref(_predict(model), block, origins[1:], patch=8)
    assert (fast != slow).any()


def test_pointwise_model_gives_per_voxel_argmax():
    """A network that looks at each voxel alone: overlaps cannot change the per-voxel answer."""
    from pipeline_support import IntensityBins

    rng = np.random.default_rng(5)
    block = rng.random((112, 96, 96)).astype(np.float32)
    origins = patches.patch_origins(block.shape, 16)
    classes = aggregate(IntensityBins(), torch.from_numpy(block), origins, batch_size=2).numpy()
    np.testing.assert_array_equal(classes, np.round(block * 31).astype(np.int64))


def test_progress_reports_each_batch():
    block, origins = _case(6)
    seen = []
    aggregate(ConvSoftmax(), torch.from_numpy(block), origins, batch_size=5, patch=8, progress=seen.append)
    assert len(seen) == -(-len(origins) // 5)
    assert seen == sorted(seen) and seen[-1] == 1.0


@pytest.mark.parametrize("tta", [False, True])
def test_out_of_memory_halves_the_batch_then_moves_to_cpu(monkeypatch, caplog, tta):
    """CUDA cannot be had here: a model that 'runs out of memory' while it believes it is on the GPU."""
    from medsegmamba.pipeline import aggregate as module

    class Greedy(ConvSoftmax):
        on_gpu, batches = True, []

        def forward(self, x):
            self.batches.append(x.shape[0])
            if self.on_gpu:
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return super().forward(x)

        def to(self, device):
            self.on_gpu = str(device) != "cpu"
            return self

    model = Greedy()
    monkeypatch.setattr(module, "_on_cuda", lambda tensor: model.on_gpu)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    block, origins = _case(7)
    with caplog.at_level("WARNING"):
        classes = aggregate(model, torch.from_numpy(block), origins, batch_size=4, patch=8, tta=tta,
                            swap=SWAP5).numpy()
    assert model.batches[:3] == [4, 2, 1] and set(model.batches[3:]) == {1}
    assert [r.message for r in caplog.records] == ["CUDA out of memory: retrying with batch size 2",
                                                  "CUDA out of memory: retrying with batch size 1",
                                                  "CUDA out of memory at batch size 1: falling back to the CPU (slow)"]
    np.testing.assert_array_equal(classes, aggregate_ref(_predict(ConvSoftmax()), block, origins, patch=8,
                                                         tta=tta, swap=SWAP5))


@pytest.mark.parametrize("seed, batch_size", [(4, 1), (5, 3)])
def test_non_overlapping_patches_skip_the_sum_and_give_the_same_classes(seed, batch_size):
    model = ConvSoftmax(seed=seed)
    block, origins = _case(seed, shape=(16, 24, 8), step=8)  # step == patch: 2 x 3 x 1 patches, no overlap
    expected = aggregate_ref(_predict(model), block, origins, patch=8)
    got = aggregate(model, torch.from_numpy(block), origins, batch_size=batch_size, patch=8, overlap=False)
    assert got.dtype == torch.int64 and np.array_equal(got.numpy(), expected)


# ---------------------------------------------------------------- left-right mirroring (tta)


@pytest.mark.parametrize("seed, batch_size, overlap, classes", [
    (0, 1, True, 5), (1, 3, True, 5), (2, 64, True, 5), (3, 2, True, 32), (4, 1, False, 5), (5, 3, False, 32)])
def test_tta_matches_numpy_twin(seed, batch_size, overlap, classes):
    """32 classes: the default swap, ASEG's; the twin mirrors in numpy, the fast path in torch."""
    model = ConvSoftmax(classes=classes, seed=seed)
    block, origins = _case(seed, step=4 if overlap else 8, shape=(16, 20, 12) if overlap else (16, 24, 8))
    swap = SWAP5 if classes == 5 else None
    fast = aggregate(model, torch.from_numpy(block), origins, batch_size=batch_size, patch=8, overlap=overlap,
                     tta=True, swap=swap).numpy()
    slow = aggregate_ref(_predict(model), block, origins, patch=8, tta=True, swap=swap)
    plain = aggregate_ref(_predict(model), block, origins, patch=8)
    print(f"seed {seed}: {(fast != slow).sum()} of {fast.size} voxels differ; "
          f"tta changed {(slow != plain).sum()} voxels")
    np.testing.assert_array_equal(fast, slow)


def test_twin_tells_tta_apart():
    """Sibling: the plain fast path must not match the twin with tta on."""
    model = ConvSoftmax(seed=6)
    block, origins = _case(6)
    plain = aggregate(model, torch.from_numpy(block), origins, batch_size=4, patch=8).numpy()
    assert (plain != aggregate_ref(_predict(model), block, origins, patch=8, tta=True, swap=SWAP5)).any()


class LeftLeaning(torch.nn.Module):
    """An asymmetric toy 'network' of 3 classes (0, left, right) along the patch's axis 0, which
    ramps r = 0, 1/3, 2/3, 1: probabilities (0.45, r, r * x) for intensity x."""

    def forward(self, x):
        ramp = torch.linspace(0, 1, x.shape[2]).view(1, 1, -1, 1, 1).expand_as(x)
        return torch.cat([torch.full_like(x, 0.45), ramp, ramp * x], dim=1)


@pytest.mark.parametrize("overlap", [True, False])
def test_tta_is_the_mean_of_the_plain_and_the_mirrored_pass(overlap):
    """x = 0.5 in one 4^3 patch. Plain: (0.45, r, r/2) -> classes 0 0 1 1 along axis 0.
    Mirrored: the input is the same, the output flipped back gives (0.45, 1-r, (1-r)/2), and the
    swap of left and right makes it (0.45, (1-r)/2, 1-r). The mean:
    class 1 (r + (1-r)/2)/2 = 0.25 0.33 0.42 0.50, class 2 (r/2 + 1-r)/2 = 0.50 0.42 0.33 0.25
    against 0.45 -> classes 2 0 0 1."""
    block = torch.full((4, 4, 4), 0.5)
    origins = np.zeros((1, 3), np.int64)
    plain = aggregate(LeftLeaning(), block, origins, patch=4, overlap=overlap)
    tta = aggregate(LeftLeaning(), block, origins, patch=4, overlap=overlap, tta=True, swap=[0, 2, 1])
    assert plain[:, 0, 0].tolist() == [0, 0, 1, 1]
    assert tta[:, 0, 0].tolist() == [2, 0, 0, 1]
    assert (tta == tta[:, :1, :1]).all()  # the same along the other two axes
    ref = aggregate_ref(lambda p: LeftLeaning()(torch.from_numpy(p.copy())[None, None])[0].numpy(),
                        block.numpy(), origins, patch=4, tta=True, swap=[0, 2, 1])
    np.testing.assert_array_equal(tta.numpy(), ref)


def test_tta_swap_must_fit_the_network():
    block, origins = _case(7)
    with pytest.raises(ValueError, match="the network gives 5 classes, but the left-right swap has 32"):
        aggregate(ConvSoftmax(), torch.from_numpy(block), origins, patch=8, tta=True)
