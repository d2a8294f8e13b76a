"""SynthSeg-style training images, made on the device from whole-head label maps.

Per sample: a patch centre (near the subcortical structures most of the time, anywhere in the
head otherwise) -> random affine + smooth elastic field -> nearest-neighbour label patch (every
`voxel_mm`-th voxel of the 1 mm map: a locator learns 3 mm patches this way)
(B, P, P, P) -> optional left-right flip with label swap -> a Gaussian intensity per label
(fully random contrasts, or T1-like ones) -> blur / low resolution -> bias field -> noise ->
gamma -> the pipeline's intensity rule. Everything is batched torch and draws from one
`torch.Generator`, so a seed fixes the stream (exact resume saves that generator's state).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..fields import from_known_fields
from .intensity import conform_intensity
from .labelmaps import TISSUE_ORDER, LabelTable

log = logging.getLogger(__name__)

ILV_LABELS = (5, 44)                  # left, right inferior lateral ventricle
ILV_HOSTS = (2, 41, 17, 53, 18, 54)   # cerebral WM, hippocampus, amygdala: where a horn may grow


@dataclass
class SynthConfig:
    patch: int = 96
    focus_prob: float = 0.75       # centre on a subcortical voxel, else anywhere in the head
    centre_jitter: float = 12.0    # voxels, uniform per axis
    rotation: float = 15.0         # degrees, per axis
    scaling: float = 0.15          # scale in [1 - s, 1 + s] per axis
    shear: float = 0.012
    elastic_std: float = 3.0       # voxels, max std of the coarse displacement field
    elastic_grid: int = 5
    flip_prob: float = 0.5
    t1_prob: float = 0.5           # T1-like contrast, else fully random
    lowres_prob: float = 0.5
    max_spacing: float = 4.0       # mm of the simulated thick-slice axis
    iso_prob: float = 0.0          # else, all three axes at a lower resolution (SynthSeg-like; 0: never)
    iso_max_spacing: float = 3.0   # mm, the largest spacing of each axis then
    bias_std: float = 0.4
    noise_max: float = 8.0         # std on the 0..255 scale
    gamma_std: float = 0.25
    scale_jitter: float = 0.1      # spread of the intensity rule's upper limit
    coords_per_map: int = 20000
    voxel_mm: int = 1              # mm per patch voxel: 3 makes the coarse locator's 3 mm patches
                                   # (288 mm, a whole head; pipeline/focus.py)
    ilv_erode_prob: float = 0.0    # per patch: the inferior lateral ventricles lose one voxel layer
    ilv_dilate_prob: float = 0.0   # per patch (after erosion's draw): they gain one, into WM,
                                   # hippocampus and amygdala. See SynthGenerator._resize_ilv.
    csf_tie_prob: float = 0.0      # per fully random contrast: every CSF space (ventricles, horns,
                                   # cisterns) shares one mean. See SynthGenerator._tie_csf.

    @classmethod
    def from_dict(cls, d: dict) -> "SynthConfig":
        """From a training config's "synth" object; an unknown field is a ValueError that lists the known ones."""
        return from_known_fields(cls, d, "synth")

    def __post_init__(self):
        for f in dataclasses.fields(self):  # every field is a number; a string or a bool from JSON is a mistake
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"synth.{f.name}: expected a number, got {value!r}")
        for name in ("focus_prob", "flip_prob", "t1_prob", "lowres_prob", "iso_prob",
                     "ilv_erode_prob", "ilv_dilate_prob", "csf_tie_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"synth.{name}: expected a probability in [0, 1], got {getattr(self, name)!r}")
        if self.lowres_prob + self.iso_prob > 1.0:
            raise ValueError(f"synth.lowres_prob + synth.iso_prob: one draw picks one of them, so they must add up "
                             f"to at most 1, got {self.lowres_prob} + {self.iso_prob}")
        if self.ilv_erode_prob + self.ilv_dilate_prob > 1.0:
            raise ValueError(f"synth.ilv_erode_prob + synth.ilv_dilate_prob: one draw picks one of them, so "
                             f"they must add up to at most 1, got {self.ilv_erode_prob} + {self.ilv_dilate_prob}")
        for name in ("max_spacing", "iso_max_spacing"):
            if getattr(self, name) < 1.0:
                raise ValueError(f"synth.{name}: expected a spacing of at least 1 mm, got {getattr(self, name)!r}")


class SynthGenerator:
    """Holds the encoded maps on `device` and makes batches: `sample(b) -> (image, target)`.

    image (B, 1, P, P, P) float32 in [0, 1]; target (B, P, P, P) int64 class indices (0..31).
    """

    def __init__(self, maps: list[np.ndarray], table: LabelTable, config: SynthConfig,
                 device="cpu", seed: int = 0):
        self.cfg, self.table, self.device = config, table, torch.device(device)
        self.maps = [torch.from_numpy(table.encode(m)).to(self.device) for m in maps]
        self.shape = self.maps[0].shape
        if any(m.shape != self.shape for m in self.maps):
            raise ValueError(f"label maps: expected one shape, got {[tuple(m.shape) for m in self.maps]}")
        self.target_lut = torch.from_numpy(table.target).to(self.device)
        self.int_lut = torch.from_numpy(table.intensity).to(self.device)
        self.mirror_lut = torch.from_numpy(table.mirror).to(self.device)
        self.tissue = torch.from_numpy(table.intensity_tissue).to(self.device)
        csf = table.intensity_tissue == TISSUE_ORDER.index("csf")  # per intensity class
        self.csf_classes = torch.from_numpy(csf).to(self.device)
        # the class the others copy when tied (-1: fewer than two, nothing to tie); found once
        # here, not per batch, where it would cost a device sync
        csf_idx = np.flatnonzero(csf)
        self.csf_first = int(csf_idx[0]) if csf_idx.size >= 2 else -1
        self.ilv = torch.from_numpy(np.isin(table.labels, ILV_LABELS)).to(self.device)
        self.ilv_host = torch.from_numpy(np.isin(table.labels, ILV_HOSTS)).to(self.device)
        rng = np.random.default_rng(1234)
        trained = table.target > 0  # per gen index: looked up as bools, not as a map of int64
        self.focus = torch.stack([self._coords(m, trained[m], rng) for m in map(
            lambda t: t.cpu().numpy(), self.maps)]).to(self.device)
        self.head = torch.stack([self._coords(m, m > 0, rng) for m in map(
            lambda t: t.cpu().numpy(), self.maps)]).to(self.device)
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(seed)
        p = config.patch
        r = torch.arange(p, dtype=torch.float32, device=self.device) - (p - 1) / 2
        self.base = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1)  # (P,P,P,3)

    def _coords(self, gmap: np.ndarray, mask: np.ndarray, rng) -> torch.Tensor:
        flat = np.flatnonzero(mask)
        if flat.size == 0:
            flat = np.arange(mask.size)
        k = self.cfg.coords_per_map
        pick = flat[rng.choice(flat.size, k, replace=flat.size < k)]
        return torch.from_numpy(np.stack(np.unravel_index(pick, mask.shape), 1).astype(np.float32))

    # --- random draws -------------------------------------------------------------------------
    def _u(self, *shape, lo=0.0, hi=1.0):
        return torch.rand(*shape, generator=self.gen, device=self.device) * (hi - lo) + lo

    def _n(self, *shape):
        return torch.randn(*shape, generator=self.gen, device=self.device)

    def get_state(self) -> torch.Tensor:
        return self.gen.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        self.gen.set_state(state.cpu())

    # --- geometry -----------------------------------------------------------------------------
    def _affine(self, b: int) -> torch.Tensor:
        c = self.cfg
        ang = self._u(b, 3, lo=-c.rotation, hi=c.rotation) * math.pi / 180
        mats = []
        for axis in range(3):
            cos, sin = ang[:, axis].cos(), ang[:, axis].sin()
            m = torch.zeros(b, 3, 3, device=self.device)
            i, j = [a for a in range(3) if a != axis]
            m[:, axis, axis] = 1
            m[:, i, i], m[:, j, j], m[:, i, j], m[:, j, i] = cos, cos, -sin, sin
            mats.append(m)
        rot = mats[0] @ mats[1] @ mats[2]
        scale = torch.diag_embed(self._u(b, 3, lo=1 - c.scaling, hi=1 + c.scaling))
        shear = torch.eye(3, device=self.device) + self._u(b, 3, 3, lo=-c.shear, hi=c.shear) * (
            1 - torch.eye(3, device=self.device))
        return rot @ scale @ shear

    def _centres(self, b: int, subj: torch.Tensor) -> torch.Tensor:
        k = self.focus.shape[1]
        pick = (self._u(b) * k).long().clamp_max(k - 1)
        focus = self._u(b) < self.cfg.focus_prob
        pts = torch.where(focus[:, None], self.focus[subj, pick], self.head[subj, pick])
        return pts + self._u(b, 3, lo=-self.cfg.centre_jitter, hi=self.cfg.centre_jitter)

    def _grid(self, b: int, subj: torch.Tensor) -> torch.Tensor:
        c, p = self.cfg, self.cfg.patch
        src = torch.einsum("bij,xyzj->bxyzi", self._affine(b), self.base * float(c.voxel_mm))
        g = c.elastic_grid
        field = self._n(b, 3, g, g, g) * self._u(b, 1, 1, 1, 1, hi=c.elastic_std)
        field = F.interpolate(field, size=(p, p, p), mode="trilinear", align_corners=True)
        src = src + field.permute(0, 2, 3, 4, 1) + self._centres(b, subj)[:, None, None, None]
        size = torch.tensor(self.shape, dtype=torch.float32, device=self.device)
        return (2 * src / (size - 1) - 1).flip(-1)  # grid_sample wants (x=W, y=H, z=D)

    def labels(self, b: int) -> torch.Tensor:
        """(B, P, P, P) gen indices of deformed, optionally flipped patches."""
        subj = (self._u(b) * len(self.maps)).long().clamp_max(len(self.maps) - 1)
        grid = self._grid(b, subj)
        out = []
        for i in range(b):
            vol = self.maps[int(subj[i])][None, None].float()
            out.append(F.grid_sample(vol, grid[i:i + 1], mode="nearest", padding_mode="zeros",
                                     align_corners=True)[0, 0])
        gen = self._resize_ilv(torch.stack(out).long())
        flip = self._u(b) < self.cfg.flip_prob
        flipped = self.mirror_lut[gen.flip(1)]
        return torch.where(flip[:, None, None, None], flipped, gen)

    def _resize_ilv(self, gen: torch.Tensor) -> torch.Tensor:
        """Per patch, maybe erode or dilate the inferior lateral ventricles by one voxel layer.

        The temporal horn is 1-3 voxels thick and its size varies several-fold between people
        (slit-like in young adults, wide with atrophy), while the 20 training maps hold ~1,050
        voxels each. Without variation the network learns where a typical horn lies rather than
        reading it from the image. Eroded voxels take a non-ventricle 6-neighbour's label; grown
        ones take the neighbouring ventricle's, only where WM, hippocampus or amygdala was.
        With both probabilities 0 nothing is drawn, so older runs resume on the same stream."""
        c = self.cfg
        if c.ilv_erode_prob == 0 and c.ilv_dilate_prob == 0:
            return gen
        u = self._u(gen.shape[0])
        erode = u < c.ilv_erode_prob
        dilate = (u >= c.ilv_erode_prob) & (u < c.ilv_erode_prob + c.ilv_dilate_prob)
        return resize_ilv(gen, self.ilv, self.ilv_host, erode, dilate)

    # --- intensities --------------------------------------------------------------------------
    def _t1_means(self, b: int) -> torch.Tensor:
        """(B, T) mean per tissue type, in TISSUE_ORDER, on a 0..255 scale."""
        wm = self._u(b, lo=90, hi=170)
        gm = wm * self._u(b, lo=0.55, hi=0.8)
        csf = wm * self._u(b, lo=0.05, hi=0.35)
        between = lambda lo, hi: gm + self._u(b, lo=lo, hi=hi) * (wm - gm)  # noqa: E731
        t = {"wm": wm, "gm": gm, "csf": csf, "thalamus": between(0.3, 0.7),
             "pallidum": between(0.5, 0.95), "striatum": between(0.0, 0.35),
             "brainstem": between(0.5, 1.0), "ventraldc": between(0.4, 0.9),
             "choroid": between(-0.3, 0.3), "background": self._u(b, hi=10)}
        return torch.stack([t[name] for name in TISSUE_ORDER], 1)

    def _means_stds(self, b: int):
        n = self.table.num_intensity
        rand_mean = self._u(b, n, lo=0, hi=255)
        rand_std = self._u(b, n, lo=1, hi=25)
        rand_mean, rand_std = self._tie_csf(rand_mean, rand_std)
        tissue = self.tissue[None].expand(b, n)
        t1 = self._t1_means(b).gather(1, tissue.clamp_min(0)) * (1 + 0.05 * self._n(b, n))
        t1 = torch.where(tissue >= 0, t1, rand_mean)
        t1_std = self._u(b, n, lo=1, hi=12)
        use_t1 = (self._u(b) < self.cfg.t1_prob)[:, None]
        return torch.where(use_t1, t1, rand_mean), torch.where(use_t1, t1_std, rand_std)

    def _tie_csf(self, mean: torch.Tensor, std: torch.Tensor):
        """(B, n) random means and stds -> the same, where (per sample, csf_tie_prob) every CSF
        intensity class takes the first one's mean (times 1 + 5 % noise, as T1-like tissue) and std.

        CSF is one fluid: under any contrast the lateral ventricles, their temporal horns, the third
        and fourth ventricles and the cisterns look alike, as the T1-like contrasts already draw
        them. Drawn apart, the horn may look like anything, and the network learns to place a horn
        of typical shape whatever the image shows (on fsaverage its extra horn voxels are as bright
        as gray matter). With csf_tie_prob 0 nothing is drawn, so older runs resume on the same stream."""
        p, first = self.cfg.csf_tie_prob, self.csf_first
        if p == 0 or first < 0:
            return mean, std
        b, n = mean.shape
        tie = (self._u(b) < p)[:, None] & self.csf_classes[None]
        shared = mean[:, first:first + 1] * (1 + 0.05 * self._n(b, n))
        return torch.where(tie, shared, mean), torch.where(tie, std[:, first:first + 1], std)

    def _blur_lowres(self, img: torch.Tensor) -> torch.Tensor:
        """img (B,1,P,P,P): per sample, maybe one thick axis, or (iso_prob) every axis at its own
        spacing in [1, iso_max_spacing] mm, blurred and resampled back. With iso_prob 0 the draws
        are those of the one-thick-axis generator alone, so older runs resume on the same stream."""
        c, p = self.cfg, self.cfg.patch
        out = []
        for i in range(img.shape[0]):
            x = img[i:i + 1]
            spacing = torch.ones(3)
            u = float(self._u(1))
            if u < c.lowres_prob:
                spacing[int(self._u(1) * 3) % 3] = float(self._u(1, lo=1.0, hi=c.max_spacing))
            elif u < c.lowres_prob + c.iso_prob:
                # clinical scans at 1.2-2 mm, or blurred by motion: the whole image is softer
                spacing = self._u(3, lo=1.0, hi=c.iso_max_spacing).cpu()
            sig = (0.4 * spacing).tolist()
            sig = [s * float(self._u(1, lo=0.5, hi=1.2)) for s in sig]
            x = _gaussian_blur(x, sig)
            if spacing.max() > 1.0:
                small = [max(8, int(round(p / float(s)))) for s in spacing]
                x = F.interpolate(x, size=small, mode="trilinear", align_corners=True)
                x = F.interpolate(x, size=(p, p, p), mode="trilinear", align_corners=True)
            out.append(x)
        return torch.cat(out)

    def image(self, gen: torch.Tensor) -> torch.Tensor:
        b, p = gen.shape[0], self.cfg.patch
        means, stds = self._means_stds(b)
        cls = self.int_lut[gen].reshape(b, -1)
        img = means.gather(1, cls) + stds.gather(1, cls) * self._n(b, cls.shape[1])
        img = self._blur_lowres(img.reshape(b, 1, p, p, p).clamp_min(0))
        bias = self._n(b, 1, 4, 4, 4) * self._u(b, 1, 1, 1, 1, hi=self.cfg.bias_std)
        img = img * F.interpolate(bias, size=(p, p, p), mode="trilinear", align_corners=True).exp()
        img = img + self._n(*img.shape) * self._u(b, 1, 1, 1, 1, hi=self.cfg.noise_max)
        img = img.clamp_min(0)
        img = img / img.flatten(1).amax(1).clamp_min(1e-6)[:, None, None, None, None]
        img = img ** (self._n(b, 1, 1, 1, 1) * self.cfg.gamma_std).exp()
        jitter = self._u(b, lo=1 - self.cfg.scale_jitter, hi=1 + self.cfg.scale_jitter)
        return conform_intensity(img, jitter)

    def sample(self, b: int):
        gen = self.labels(b)
        return self.image(gen), self.target_lut[gen]


def _neighbours(x: torch.Tensor):
    """The six face neighbours of every voxel of x (B, D, H, W); at an edge, the voxel itself."""
    for dim in (1, 2, 3):
        i = torch.arange(x.shape[dim], device=x.device)
        last = x.shape[dim] - 1
        yield x.index_select(dim, (i + 1).clamp_max(last))
        yield x.index_select(dim, (i - 1).clamp_min(0))


def _first_neighbour(gen: torch.Tensor, wanted: torch.Tensor) -> torch.Tensor:
    """Per voxel, the gen index of its first face neighbour (in _neighbours' order) whose index
    `wanted` (bool per gen index) marks; -1 where none is."""
    fill = torch.full_like(gen, -1)
    for nb in _neighbours(gen):
        fill = torch.where((fill < 0) & wanted[nb], nb, fill)
    return fill


def resize_ilv(gen: torch.Tensor, ilv: torch.Tensor, host: torch.Tensor, erode: torch.Tensor,
               dilate: torch.Tensor) -> torch.Tensor:
    """gen (B, D, H, W) gen indices; ilv, host: bool per gen index; erode, dilate: bool (B,).
    One 6-connected layer: eroded voxels (a ventricle voxel with a non-ventricle face neighbour)
    take the first such neighbour's label; with dilation, host voxels with a ventricle face
    neighbour take that ventricle's label."""
    out = gen
    if bool(erode.any()):
        fill = _first_neighbour(gen, ~ilv)
        out = torch.where(erode[:, None, None, None] & ilv[gen] & (fill >= 0), fill, out)
    if bool(dilate.any()):
        fill = _first_neighbour(gen, ilv)
        out = torch.where(dilate[:, None, None, None] & host[gen] & (fill >= 0), fill, out)
    return out


def _gaussian_blur(x: torch.Tensor, sigmas) -> torch.Tensor:
    """x (1,1,D,H,W), separable Gaussian with one sigma (voxels) per axis; 0 skips an axis."""
    for axis, s in enumerate(sigmas):
        if s < 0.3:
            continue
        r = max(1, int(math.ceil(2.5 * s)))
        k = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
        k = torch.exp(-0.5 * (k / s) ** 2)
        k = (k / k.sum()).view([1, 1] + [len(k) if a == axis else 1 for a in range(3)])
        pad = [0] * 6
        pad[2 * (2 - axis)] = pad[2 * (2 - axis) + 1] = r
        x = F.conv3d(F.pad(x, pad, mode="replicate"), k)
    return x


class PairGenerator(SynthGenerator):
    """Real-pair mode: conformed images with their label maps, same geometry as the synthetic
    generator (image trilinear, labels nearest), light intensity augmentation (bias, noise,
    gamma), then the pipeline's intensity rule."""

    def __init__(self, images: list[np.ndarray], maps: list[np.ndarray], table: LabelTable,
                 config: SynthConfig, device="cpu", seed: int = 0):
        if len(images) != len(maps):
            raise ValueError(f"real pairs: {len(images)} images but {len(maps)} label maps")
        super().__init__(maps, table, config, device, seed)
        for i, (im, m) in enumerate(zip(images, self.maps)):
            if tuple(im.shape) != tuple(m.shape):
                raise ValueError(f"pair {i}: image shape {im.shape} differs from labels {tuple(m.shape)}")
        self.images = [torch.as_tensor(np.asarray(im, np.float32)).to(self.device) for im in images]

    def sample(self, b: int):
        c, p = self.cfg, self.cfg.patch
        subj = (self._u(b) * len(self.maps)).long().clamp_max(len(self.maps) - 1)
        grid = self._grid(b, subj)
        imgs, gens = [], []
        for i in range(b):
            s = int(subj[i])
            g = grid[i:i + 1]
            gens.append(F.grid_sample(self.maps[s][None, None].float(), g, mode="nearest",
                                      align_corners=True)[0, 0])
            imgs.append(F.grid_sample(self.images[s][None, None], g, mode="bilinear",
                                      align_corners=True)[0])
        gen, img = torch.stack(gens).long(), torch.stack(imgs).clamp_min(0)
        flip = self._u(b) < c.flip_prob
        gen = torch.where(flip[:, None, None, None], self.mirror_lut[gen.flip(1)], gen)
        img = torch.where(flip[:, None, None, None, None], img.flip(2), img)
        bias = self._n(b, 1, 4, 4, 4) * self._u(b, 1, 1, 1, 1, hi=c.bias_std / 2)
        img = img * F.interpolate(bias, size=(p, p, p), mode="trilinear", align_corners=True).exp()
        img = img / img.flatten(1).amax(1).clamp_min(1e-6)[:, None, None, None, None]
        img = (img + self._n(*img.shape) * self._u(b, 1, 1, 1, 1, hi=0.02)).clamp_min(0)
        img = img ** (self._n(b, 1, 1, 1, 1) * c.gamma_std / 2).exp()
        jitter = self._u(b, lo=1 - c.scale_jitter, hi=1 + c.scale_jitter)
        return conform_intensity(img, jitter), self.target_lut[gen]
