import numpy as np
import pytest
import torch

from medsegmamba.labels import ASEG
from medsegmamba.train.labelmaps import CISTERN_MM, EXTRA_CSF, VENTRICLE_MM, LabelTable, present_values, split_csf, target_of
from medsegmamba.train.synth import SynthConfig, SynthGenerator

CLS = {s.label: i for i, s in enumerate(ASEG)}


def make(maps, seed=0, **kw):
    values = set().union(*(np.unique(m).tolist() for m in maps))
    cfg = SynthConfig(patch=24, coords_per_map=500, **kw)
    return SynthGenerator(maps, LabelTable(values), cfg, seed=seed)


def test_target_rules():
    assert target_of(25) == 2 and target_of(57) == 41
    for extra in (30, 62, 72, 85, 502, 507, 530, EXTRA_CSF):
        assert target_of(extra) == 0
    assert target_of(24) == 24 and target_of(24, csf="aseg") == 24 and target_of(24, csf="background") == 0
    with pytest.raises(ValueError, match="csf"):
        target_of(24, csf="nope")
    assert [target_of(v) for v in (136, 137, 163, 164)] == [31, 31, 63, 63]
    assert [target_of(v, "ventricle") for v in (136, 137, 163, 164)] == [4, 5, 43, 44]
    with pytest.raises(ValueError, match="choroid"):
        target_of(136, "nope")


def test_table_mirror_and_intensity_classes():
    t = LabelTable([0, 2, 41, 10, 49, 507, 136, 163])
    g = {int(v): i for i, v in enumerate(t.labels)}
    assert t.labels[t.mirror[g[10]]] == 49 and t.labels[t.mirror[g[49]]] == 10
    assert t.labels[t.mirror[g[507]]] == 507
    assert t.intensity[g[10]] == t.intensity[g[49]] and t.intensity[g[10]] != t.intensity[g[2]]
    assert t.target[g[136]] == CLS[31] and t.target[g[507]] == 0
    with pytest.raises(ValueError, match="999"):
        t.encode(np.array([[[0, 999]]]))


def _split_csf_slow(m):
    """split_csf's twin: every CSF voxel's distance to every thalamus and third-ventricle voxel, by
    brute force."""
    out = m.copy()
    csf, thal, v3 = np.argwhere(m == 24), np.argwhere(np.isin(m, (10, 49))), np.argwhere(m == 14)

    def near(points, v, r):
        return len(points) > 0 and np.sqrt(((points - v) ** 2).sum(1)).min() <= r

    for v in csf:
        keep = near(thal, v, CISTERN_MM) and near(v3, v, VENTRICLE_MM)
        out[tuple(v)] = 24 if keep else EXTRA_CSF
    return out


def test_split_csf_keeps_only_the_cistern():
    m = np.zeros((30, 30, 30), np.int32)
    m[5:8, 5:8, 5:8] = 10
    m[8, 6, 6] = m[10, 6, 6] = m[11, 6, 6] = m[29, 29, 29] = 24  # 1, 3 (kept), 4 and far (split)
    m[8, 8, 8] = 24  # diagonal: sqrt(3) from the corner voxel
    m[10, 6, 13] = 14  # third ventricle: 7.3, 7 and 5.7 from the three kept voxels
    m[10, 6, 5] = 24  # 3 from the thalamus, 8 from the ventricle: kept
    m[3, 8, 7] = 24  # 2.2 from the thalamus, 9.4 from the ventricle: split
    s = split_csf(m)
    assert s[8, 6, 6] == s[10, 6, 6] == s[8, 8, 8] == s[10, 6, 5] == 24
    assert s[11, 6, 6] == s[29, 29, 29] == s[3, 8, 7] == EXTRA_CSF
    assert (s[m != 24] == m[m != 24]).all() and m[11, 6, 6] == 24  # input untouched
    no_thalamus = np.where(m == 10, 2, m)
    assert not (split_csf(no_thalamus) == 24).any()
    no_ventricle = np.where(m == 14, 2, m)
    assert not (split_csf(no_ventricle) == 24).any()


@pytest.mark.parametrize("seed", range(4))
def test_split_csf_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    m = rng.choice([0, 2, 24, 24, 24, 10, 49, 14], size=(14, 12, 16), p=[.3, .2, .15, .15, .15, .02, .02, .01])
    m[:3] = 24  # a slab far enough that the crop matters
    assert (split_csf(m) == _split_csf_slow(m)).all()


@pytest.mark.parametrize("seed", range(4))
def test_present_values_matches_unique(seed):
    """present_values counts instead of sorting; np.unique is its twin, on label-like maps, on
    negative and huge values (where it falls back), on floats, and on an empty map."""
    rng = np.random.default_rng(seed)
    cases = [rng.choice([0, 2, 3, 41, 85, 502, 1023], size=(20, 21, 7)).astype(np.int32),
             rng.integers(0, 256, (9, 8, 7), dtype=np.uint8),
             rng.integers(0, 90, (9, 8, 7), dtype=np.uint64),  # bincount refuses uint64
             rng.integers(-5, 5, (30,)).astype(np.int64),
             np.array([0, 1 << 21, 7], np.int64),
             rng.normal(size=(5, 5)),
             np.zeros((0,), np.int32)]
    for a in cases:
        got, want = present_values(a), np.unique(a)
        assert got.dtype == want.dtype and np.array_equal(got, want)


def test_table_csf_rules():
    t = LabelTable([0, 2, 10, 14, 49, 24])
    g = {int(v): i for i, v in enumerate(t.labels)}
    assert EXTRA_CSF in g and t.target[g[24]] == CLS[24] and t.target[g[EXTRA_CSF]] == 0
    assert t.intensity[g[EXTRA_CSF]] == t.intensity[g[24]]  # imaged the same: told apart by place
    m = np.zeros((12, 12, 12), np.int32)
    m[4:6, 4:6, 4:6], m[6, 4, 4], m[11, 11, 11], m[8, 4, 4] = 10, 24, 24, 14
    enc = t.encode(m)
    assert t.labels[enc[6, 4, 4]] == 24 and t.labels[enc[11, 11, 11]] == EXTRA_CSF
    aseg = LabelTable([0, 2, 10, 14, 49, 24], csf="aseg")
    assert EXTRA_CSF not in aseg.labels and aseg.labels[aseg.encode(m)[11, 11, 11]] == 24
    with pytest.raises(ValueError, match="csf"):
        LabelTable([0, 24], csf="everywhere")


def test_shapes_ranges_targets(maps):
    gen = make(maps)
    img, tgt = gen.sample(3)
    assert img.shape == (3, 1, 24, 24, 24) and img.dtype == torch.float32
    assert tgt.shape == (3, 24, 24, 24) and tgt.dtype == torch.int64
    assert float(img.min()) >= 0 and float(img.max()) <= 1
    # on the 1/255 grid, as the pipeline's uint8 / 255
    assert torch.allclose(img * 255, (img * 255).round(), atol=1e-4)
    allowed = {CLS[v] for v in (0, 10, 49, 17, 53, 4, 43, 31, 63)}
    assert set(tgt.unique().tolist()) <= allowed
    # the CSF shell is far from the thalami: imaged, but background like the scalp; WM/cortex
    # are not among the 32 classes
    assert CLS[24] not in tgt.unique().tolist()


def test_extra_cerebral_is_tissue_not_target(maps):
    gen = make(maps, focus_prob=0.0, centre_jitter=0.0)
    img, tgt = gen.sample(4)
    labels = gen.labels  # noqa: F841  (geometry is exercised in sample)
    assert (tgt == 0).any() and (img > 0).float().mean() > 0.3


def test_seed_determinism(maps):
    a = make(maps, seed=5).sample(2)
    b = make(maps, seed=5).sample(2)
    c = make(maps, seed=6).sample(2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_state_roundtrip(maps):
    gen = make(maps, seed=1)
    gen.sample(1)
    state = gen.get_state()
    x = gen.sample(2)
    gen.set_state(state)
    y = gen.sample(2)
    assert torch.equal(x[0], y[0]) and torch.equal(x[1], y[1])


def _centred_whole_map(m, cfg):
    """A generator whose 20^3 patch is the whole 20^3 map, centred, on an unshifted grid."""
    gen = make([m], **cfg)
    gen.focus[:] = torch.tensor([9.5, 9.5, 9.5])
    gen.head[:] = torch.tensor([9.5, 9.5, 9.5])
    gen.cfg.patch = 20
    r = torch.arange(20, dtype=torch.float32) - 9.5
    gen.base = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1)
    return gen


def test_identity_geometry_copies_labels():
    """No rotation/scale/shear/elastic/flip/jitter, centre = a focus voxel: the patch is the map."""
    m = np.zeros((20, 20, 20), np.int32)
    m[8:12, 8:12, 8:12] = 10
    m[10, 10, 10] = 49
    cfg = dict(rotation=0, scaling=0, shear=0, elastic_std=0, flip_prob=0, centre_jitter=0)
    gen = _centred_whole_map(m, cfg)
    _, tgt = gen.sample(1)
    expect = np.vectorize(lambda v: CLS.get(v, 0))(m)
    assert np.array_equal(tgt[0].numpy(), expect)


def test_identity_geometry_at_3mm_takes_every_third_voxel():
    """voxel_mm=3 (the locator): with no deformation, the 20^3 patch centred on a 60^3 map is the
    map's voxels 1, 4, ..., 58 along each axis (centre 29.5, +-3 * 9.5)."""
    rng = np.random.default_rng(0)
    m = rng.choice([0, 10, 49, 17, 53], size=(60, 60, 60)).astype(np.int32)
    gen = make([m], voxel_mm=3, rotation=0, scaling=0, shear=0, elastic_std=0, flip_prob=0, centre_jitter=0)
    gen.focus[:] = torch.tensor([29.5, 29.5, 29.5])
    gen.head[:] = torch.tensor([29.5, 29.5, 29.5])
    gen.cfg.patch = 20
    r = torch.arange(20, dtype=torch.float32) - 9.5
    gen.base = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1)
    _, tgt = gen.sample(1)
    expect = np.vectorize(lambda v: CLS.get(v, 0))(m[1::3, 1::3, 1::3])
    assert np.array_equal(tgt[0].numpy(), expect)


def test_flip_swaps_sides():
    m = np.zeros((20, 20, 20), np.int32)
    m[2:6, 8:12, 8:12] = 10
    cfg = dict(rotation=0, scaling=0, shear=0, elastic_std=0, flip_prob=1.0, centre_jitter=0)
    gen = _centred_whole_map(m, cfg)
    _, tgt = gen.sample(1)
    assert (tgt[0, 14:18, 8:12, 8:12] == CLS[49]).all() and not (tgt == CLS[10]).any()


def test_pair_generator(maps):
    from medsegmamba.train.synth import PairGenerator

    values = set().union(*(np.unique(m).tolist() for m in maps))
    images = [np.where(m > 0, 100.0, 0.0) + (m == 10) * 50 for m in maps]
    gen = PairGenerator(images, maps, LabelTable(values), SynthConfig(patch=24, coords_per_map=500))
    img, tgt = gen.sample(2)
    assert img.shape == (2, 1, 24, 24, 24) and tgt.shape == (2, 24, 24, 24)
    assert float(img.min()) >= 0 and float(img.max()) <= 1
    with pytest.raises(ValueError, match="2 images but 1"):
        PairGenerator(images, maps[:1], LabelTable(values), SynthConfig(patch=24))


def test_load_label_maps_c_order_int32(tmp_path):
    """Maps come back as C-ordered int32 (nibabel's arrays are Fortran-ordered: every whole-map
    pass would copy them), float-stored labels rounded, integer ones as they are."""
    import nibabel as nib

    from medsegmamba.train.data import load_label_maps

    lab = np.zeros((6, 5, 4), np.uint16)
    lab[1:3, 2:4, 1] = 17
    lab[4, 0, 3] = 600
    nib.save(nib.Nifti1Image(lab, np.eye(4)), tmp_path / "a.nii.gz")
    nib.save(nib.Nifti1Image(lab.astype(np.float32) + 0.2, np.eye(4)), tmp_path / "b.nii.gz")
    maps = load_label_maps(tmp_path)
    assert len(maps) == 2
    for m in maps:
        assert m.dtype == np.int32 and m.flags.c_contiguous and np.array_equal(m, lab)


def _roughness(img):
    """Mean absolute difference between neighbours along the three axes: lower for blurrier images."""
    x = img[:, 0]
    return float(sum((x.diff(dim=d)).abs().mean() for d in (1, 2, 3)))


def test_all_axes_low_resolution_blurs_every_sample(maps):
    plain = dict(lowres_prob=0.0, noise_max=0.0, bias_std=0.0, gamma_std=0.0, t1_prob=1.0)
    sharp = make(maps, seed=3, **plain).sample(4)[0]
    soft = make(maps, seed=3, **plain, iso_prob=1.0, iso_max_spacing=3.0).sample(4)[0]
    assert soft.shape == sharp.shape and float(soft.min()) >= 0 and float(soft.max()) <= 1
    assert _roughness(soft) < 0.8 * _roughness(sharp)


def test_all_axes_low_resolution_leaves_the_thick_axis_draws_alone(maps):
    # with every sample taking the thick-axis branch, iso_prob changes nothing, not even the draws
    a = make(maps, seed=4, lowres_prob=1.0, iso_prob=0.0).sample(3)
    b = make(maps, seed=4, lowres_prob=1.0, iso_prob=0.0, iso_max_spacing=9.0).sample(3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = make(maps, seed=4, lowres_prob=0.5, iso_prob=0.0).sample(3)
    d = make(maps, seed=4, lowres_prob=0.5, iso_prob=0.0, iso_max_spacing=9.0).sample(3)
    assert torch.equal(c[0], d[0])


@pytest.mark.parametrize("kw, message", [
    (dict(iso_prob=1.5), "synth.iso_prob: expected a probability in \\[0, 1\\], got 1.5"),
    (dict(lowres_prob=0.6, iso_prob=0.5), "synth.lowres_prob \\+ synth.iso_prob: .* at most 1, got 0.6 \\+ 0.5"),
    (dict(iso_max_spacing=0.5), "synth.iso_max_spacing: expected a spacing of at least 1 mm, got 0.5"),
    (dict(csf_tie_prob=-0.1), "synth.csf_tie_prob: expected a probability in \\[0, 1\\], got -0.1"),
])
def test_synth_config_refuses_bad_values(kw, message):
    with pytest.raises(ValueError, match=message):
        SynthConfig(**kw)


def test_shipped_training_configs_load():
    from pathlib import Path

    from medsegmamba.train.config import TrainConfig

    configs = Path(__file__).resolve().parents[2] / "configs"
    default = TrainConfig.from_file(configs / "default.json").synth_config()
    assert (default.iso_prob, default.iso_max_spacing, default.lowres_prob) == (0.2, 3.0, 0.5)
    assert TrainConfig.from_file(configs / "locator.json").synth_config().voxel_mm == 3


def test_training_config_names_the_file_and_the_bad_synth_value(tmp_path):
    from medsegmamba.train.config import TrainConfig

    bad = tmp_path / "bad.json"
    bad.write_text('{"synth": {"lowres_prob": 0.9, "iso_prob": 0.3}}')
    with pytest.raises(ValueError, match=r"bad\.json: synth\.lowres_prob \+ synth\.iso_prob"):
        TrainConfig.from_file(bad)


def _resize_ilv_slow(gen, ilv, host, erode, dilate):
    """The twin of synth.resize_ilv with scipy's binary morphology (6-connected cross): which
    voxels change, and that each new label is one of the voxel's face neighbours' labels."""
    from scipy import ndimage

    cross = ndimage.generate_binary_structure(3, 1)
    changed, allowed = [], []
    for g, e, d in zip(gen, erode, dilate):
        is_ilv = ilv[g]
        ch = np.zeros_like(is_ilv)
        if e:  # border_value 1: the volume's edge does not erode (the fast path's edges see themselves)
            ch |= is_ilv & ~ndimage.binary_erosion(is_ilv, cross, border_value=1)
        if d:
            ch |= host[g] & ndimage.binary_dilation(is_ilv, cross)
        changed.append(ch)
        pad = np.pad(g, 1, mode="edge")
        nbs = [pad[1 + dz:pad.shape[0] - 1 + dz, 1 + dy:pad.shape[1] - 1 + dy, 1 + dx:pad.shape[2] - 1 + dx]
               for dz, dy, dx in ((1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1))]
        allowed.append(np.stack(nbs))
    return np.stack(changed), allowed


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_resize_ilv_matches_scipy_morphology(seed):
    from medsegmamba.train.synth import resize_ilv

    rng = np.random.default_rng(seed)
    # gen indices 0..5: 1 and 2 are ventricles, 3 and 4 hosts, 0 and 5 neither
    ilv = np.array([False, True, True, False, False, False])
    host = np.array([False, False, False, True, True, False])
    gen = rng.choice(6, size=(4, 11, 12, 13), p=[0.1, 0.2, 0.1, 0.3, 0.2, 0.1])
    gen[1] = np.where(rng.random(gen[1].shape) < 0.6, 1, gen[1])  # a large ventricle with an interior
    erode, dilate = np.array([True, True, False, False]), np.array([False, False, True, False])
    out = resize_ilv(torch.from_numpy(gen), torch.from_numpy(ilv), torch.from_numpy(host),
                     torch.from_numpy(erode), torch.from_numpy(dilate)).numpy()
    changed, allowed = _resize_ilv_slow(gen, ilv, host, erode, dilate)
    assert changed.any() and changed[1].sum() > 0 and not changed[3].any()
    assert np.array_equal(out != gen, changed)
    for b in range(4):
        for z, y, x in zip(*np.nonzero(changed[b])):
            nbs = allowed[b][:, z, y, x]
            pick = nbs[~ilv[nbs]] if erode[b] else nbs[ilv[nbs]]
            assert out[b, z, y, x] in pick


def test_options_off_draw_nothing(maps):
    # runs trained before an option existed resume on the same random stream: off, it draws nothing
    gen = make(maps, seed=5)
    labels, n = gen.labels(2), gen.table.num_intensity
    steps = {"ilv": lambda g: g._resize_ilv(labels),
             "csf": lambda g: g._tie_csf(torch.rand(2, n), torch.rand(2, n))}
    for name, on in (("ilv", dict(ilv_erode_prob=0.2)), ("csf", dict(csf_tie_prob=0.9))):
        for kw in ({}, on):
            g = make(maps, seed=5, **kw)
            before = g.get_state().clone()
            steps[name](g)
            assert torch.equal(before, g.get_state()) == (not kw), (name, kw)


def test_ilv_resize_changes_the_ventricle_size():
    m = np.full((30, 30, 30), 2, np.int32)
    m[10:20, 12:16, 12:16] = 5  # a 10 x 4 x 4 horn in white matter
    cfg = dict(rotation=0, scaling=0, shear=0, elastic_std=0, flip_prob=0, centre_jitter=0)
    counts = {}
    for name, kw in (("plain", {}), ("eroded", dict(ilv_erode_prob=1.0)), ("grown", dict(ilv_dilate_prob=1.0))):
        gen = make([m], **cfg, **kw)
        gen.focus[:] = torch.tensor([14.5, 14.5, 14.5])
        gen.head[:] = torch.tensor([14.5, 14.5, 14.5])
        counts[name] = int((gen.sample(1)[1] == CLS[5]).sum())
    # one face layer: the 8 x 2 x 2 core; the box plus its six faces (2 of 4 x 4, 4 of 10 x 4)
    assert counts == {"plain": 160, "eroded": 8 * 2 * 2, "grown": 160 + 2 * 16 + 4 * 40}


def test_csf_tie_gives_every_csf_space_one_random_mean(maps):
    tied = make(maps, seed=3, t1_prob=0.0, csf_tie_prob=1.0)
    apart = make(maps, seed=3, t1_prob=0.0)
    csf = tied.csf_classes
    assert int(csf.sum()) >= 2  # the ventricles and the cistern's CSF
    m_tied, s_tied = tied._means_stds(64)
    m_apart, s_apart = apart._means_stds(64)
    first = int(csf.nonzero()[0, 0])
    assert tied.csf_first == first
    ratio = m_tied[:, csf] / m_tied[:, first:first + 1]
    assert (ratio - 1).abs().max() < 0.3 and torch.equal(s_tied[:, csf], s_tied[:, first:first + 1].expand_as(s_tied[:, csf]))
    # the draws before the tie are the untied generator's: other tissue keeps its own mean
    assert torch.equal(m_tied[:, ~csf], m_apart[:, ~csf]) and torch.equal(s_tied[:, ~csf], s_apart[:, ~csf])
    # untied, the CSF spaces are drawn apart: some pair lies far from one ratio
    assert (m_apart[:, csf] / m_apart[:, first:first + 1] - 1).abs().max() > 0.3
    half = make(maps, seed=3, t1_prob=0.0, csf_tie_prob=0.5)._means_stds(400)[0]
    close = ((half[:, csf] / half[:, first:first + 1] - 1).abs() < 0.3).all(1).float().mean()
    assert 0.4 < float(close) < 0.8  # half tied, plus a few untied pairs that happen to lie close
