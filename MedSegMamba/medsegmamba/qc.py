"""A quality-control picture: three orthogonal slices through the brain with the label overlay.

Works on the conformed grid (LIA, 1 mm), so the pictures look the same whatever the input's
orientation. The picture is composed with numpy (one pixel per voxel, nearest neighbour) and
written with Pillow, imported only when a picture is drawn: tens of milliseconds, where a
matplotlib figure took a few hundred.
"""

from __future__ import annotations

import numpy as np

from .labels import ASEG, HIPPOCAMPAL_SUBFIELDS


def orthogonal_slices(image, labels) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Sagittal, coronal, axial slices (numpy, display orientation) of a conformed image and labels.

    `image`, `labels`: (256,256,256) LIA numpy arrays or torch tensors; the slices pass through the
    centre of the labelled voxels (the volume's centre if none). Only the slices leave the device.
    """
    nonzero = (labels != 0).nonzero()
    if isinstance(nonzero, tuple):  # numpy
        centre = [int(np.mean(n)) if n.size else s // 2 for n, s in zip(nonzero, labels.shape)]
    else:  # torch
        centre = ([int(v) for v in nonzero.float().mean(0)] if nonzero.shape[0]
                  else [s // 2 for s in labels.shape])
    i, j, k = centre

    def cut(volume):
        arrays = [volume[i, :, :], volume[:, :, k], volume[:, j, :]]
        arrays = [a.cpu().numpy() if hasattr(a, "cpu") else np.asarray(a) for a in arrays]
        # LIA: rows of a sagittal cut already run superior -> inferior; coronal and axial are turned
        return [arrays[0], arrays[1].T, arrays[2].T[::-1]]

    return cut(image), cut(labels)


PANEL_NAMES = ("sagittal", "coronal", "axial")
MIN_PANEL = 256  # pixels: smaller slices are enlarged by a whole factor, nearest neighbour
_MARGIN = 6  # pixels between panels and around the text


def _colour_lut() -> dict[int, tuple[int, int, int]]:
    return {s.label: s.rgb for s in ASEG + HIPPOCAMPAL_SUBFIELDS if s.label != 0}


def _grey_rgb(image) -> np.ndarray:
    grey = np.asarray(image, dtype=np.float64)
    span = grey.max() - grey.min()
    grey = (grey - grey.min()) / span if span > 0 else np.zeros_like(grey)
    return np.repeat(grey[..., None], 3, axis=-1)


def overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """RGB float image (H, W, 3) in [0, 1]: grey `image` (H, W) with the colours of `labels` (H, W).

    All labels are looked up at once (sorted keys + searchsorted); `overlay_ref`, which compares
    with each label in turn, is the plain twin it must equal exactly.
    """
    rgb = _grey_rgb(image)
    lut = _colour_lut()
    keys = np.array(sorted(lut))
    colours = alpha * np.array([lut[k] for k in keys]) / 255.0  # same arithmetic as overlay_ref
    labels = np.asarray(labels).ravel()
    index = np.minimum(np.searchsorted(keys, labels), keys.size - 1)
    drawn = np.flatnonzero(keys[index] == labels)  # flat indices: much faster than a 2D mask
    pixels = rgb.reshape(-1, 3)  # a view: rgb is freshly made, contiguous
    pixels[drawn] = (1 - alpha) * pixels[drawn] + colours[index[drawn]]
    return rgb


def overlay_ref(image: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """`overlay`, one label at a time: slow and plainly right, for the tests."""
    rgb = _grey_rgb(image)
    for label, colour in _colour_lut().items():
        mask = labels == label
        if mask.any():
            rgb[mask] = (1 - alpha) * rgb[mask] + alpha * np.asarray(colour) / 255.0
    return rgb


def _panel(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """uint8 RGB overlay, enlarged by a whole factor (nearest neighbour) to at least MIN_PANEL."""
    pixels = np.rint(overlay(image, labels) * 255).astype(np.uint8)
    factor = -(-MIN_PANEL // min(pixels.shape[:2]))
    if factor > 1:
        pixels = pixels.repeat(factor, axis=0).repeat(factor, axis=1)
    return pixels


def _draw_text(draw, xy: tuple[float, float], text: str) -> None:
    try:
        draw.text(xy, text, fill=(255, 255, 255))
    except UnicodeEncodeError:  # Pillow's bitmap default font (no FreeType) knows only Latin-1
        draw.text(xy, text.encode("latin-1", "replace").decode("latin-1"), fill=(255, 255, 255))


def save_qc_png(image_slices: list[np.ndarray], label_slices: list[np.ndarray], path, title: str = "") -> None:
    """Write the three overlays side by side, named above, `title` above all, as a PNG at `path`.

    `image_slices`, `label_slices`: sagittal, coronal, axial (H, W) arrays as `orthogonal_slices`
    gives them. Black background, white text; not atomic (see io.atomic_outputs).
    """
    from PIL import Image, ImageDraw

    if not len(image_slices) == len(label_slices) == len(PANEL_NAMES):
        raise ValueError(f"save_qc_png: expected {len(PANEL_NAMES)} image and label slices "
                         f"(sagittal, coronal, axial), got {len(image_slices)} and {len(label_slices)}")
    panels = [_panel(image, labels) for image, labels in zip(image_slices, label_slices)]
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line = draw.textbbox((0, 0), "Ag")[3] + _MARGIN  # the default font's height, plus a gap
    top = _MARGIN + (line if title else 0) + line
    width = _MARGIN + sum(p.shape[1] + _MARGIN for p in panels)
    canvas = np.zeros((top + max(p.shape[0] for p in panels) + _MARGIN, width, 3), np.uint8)
    lefts = np.cumsum([_MARGIN] + [p.shape[1] + _MARGIN for p in panels[:-1]])
    for left, pixels in zip(lefts, panels):
        canvas[top:top + pixels.shape[0], left:left + pixels.shape[1]] = pixels
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    if title:
        _draw_text(draw, ((width - draw.textlength(title)) / 2, _MARGIN), title)
    for left, pixels, name in zip(lefts, panels, PANEL_NAMES):
        _draw_text(draw, (left + (pixels.shape[1] - draw.textlength(name)) / 2, top - line), name)
    picture.save(path, format="PNG", compress_level=1)
