"""The one orchestrator: a T1 file -> a label map on the input's own grid, its volumes and a QC picture.

Reads top to bottom as the pipeline (FastSurfer's run_prediction main):
read -> conform -> (coarse pass: where are the structures) -> patches -> model -> add probabilities
-> argmax -> FreeSurfer labels -> un-pad/un-crop -> back to native -> write. Everything between read and write stays on the device.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .. import io, qc, stats
from ..errors import ModelError
from ..labels import ASEG, HIPPOCAMPAL_SUBFIELDS, class_to_label
from .conform import conform, to_native
from .focus import TILINGS, predict_classes
from .hippocampus import segment_subfields
from .loading import LoadedModel, load_model, resolve_device

log = logging.getLogger(__name__)

# progress(stage, fraction): stage is "conform", "predict" or "write"; fraction in [0, 1] of that stage
Progress = Callable[[str, float], None]
FORMATS = {"nii.gz": ".nii.gz", "nii": ".nii", "mgz": ".mgz"}


@dataclass
class SegmentOptions:
    """What `segment` needs beyond the input: the CLI's options, one field each."""

    model: object = "default"        # shipped weights name, .safetensors path, or an nn.Module
    device: str = "auto"             # auto | cpu | cuda | cuda:N
    step: int | None = None          # patch step; None: 16 on CUDA (the paper), 32 on CPU (~4x faster)
    batch_size: int | None = None    # patches per forward; None: 2 on CUDA, 1 on CPU
    tiling: str = "focused"          # focused: fine patches only where a coarse pass finds structures; full
    locator: object = "locator"      # focused tiling's coarse pass (name, path, nn.Module): the shipped 3 mm
                                     # locator finds the box in one patch; None or "self": the model, at 1 mm
    hippocampus: object = None       # subfield weights (name, path or nn.Module); None: no subfields
    tta: bool = True                 # also run the aseg network on the left-right mirror and average (~1.7x the time)
    overwrite: bool = False
    output_format: str = "nii.gz"    # nii.gz | nii | mgz
    qc: bool = True

    def __post_init__(self):
        if self.output_format not in FORMATS:
            raise ValueError(f"output_format: expected one of {sorted(FORMATS)}, got {self.output_format!r}")
        if self.tiling not in TILINGS:
            raise ValueError(f"tiling: expected one of {TILINGS}, got {self.tiling!r}")
        if self.step is not None and self.step not in (8, 16, 32, 48, 96):
            raise ValueError(f"step: expected 16 or 32 (or 8, 48, 96), got {self.step}")


@dataclass
class Segmentation:
    """The result on the native grid, plus what the writers and the benchmark need."""

    labels: np.ndarray                   # (X, Y, Z) uint8 FreeSurfer aseg labels, input's grid
    affine: np.ndarray
    subfields: np.ndarray | None = None  # (X, Y, Z) int32 subfield labels, or None
    qc_slices: tuple | None = None       # (image slices, label slices) on the conformed grid
    timings: dict = field(default_factory=dict)
    patches: dict = field(default_factory=dict)  # patches per pass: {"coarse": n, "fine": m}


def output_paths(input_path, outdir, options: SegmentOptions) -> dict[str, Path]:
    """Where one subject's outputs go: labels, volumes, qc (and subfields with --hippocampus)."""
    name, outdir = io.stem(input_path), Path(outdir)
    paths = {"labels": outdir / f"{name}_aseg{FORMATS[options.output_format]}",
             "volumes": outdir / f"{name}_volumes.csv"}
    if options.qc:
        paths["qc"] = outdir / f"{name}_qc.png"
    if options.hippocampus is not None:
        paths["subfields"] = outdir / f"{name}_hipposubfields{FORMATS[options.output_format]}"
    return paths


class Segmenter:
    """Loads the model(s) once, then segments any number of files."""

    def __init__(self, options: SegmentOptions):
        self.options = options
        self.device = resolve_device(options.device)
        if self.device.type == "cuda":
            import torch

            torch.backends.cudnn.benchmark = True  # every forward has the same 96^3 shape: tune once
        self.model: LoadedModel = load_model(options.model, self.device)
        self.hippocampus = (None if options.hippocampus is None
                            else load_model(options.hippocampus, self.device))
        self.locator = (None if options.locator is None or options.locator == "self"
                        else load_model(options.locator, self.device))
        for loaded, wanted, what in ((self.model, len(ASEG), "--model (aseg)"),
                                     (self.locator, len(ASEG), "--locator (aseg)"),
                                     (self.hippocampus, len(HIPPOCAMPAL_SUBFIELDS), "--hippocampus (subfields)")):
            classes = loaded.num_classes if loaded is not None else None
            if classes is not None and classes != wanted:
                raise ModelError(f"{what} network gives {classes} classes, expected {wanted}", loaded.name)
        for loaded, what in ((self.model, "--model"), (self.hippocampus, "--hippocampus")):
            if loaded is not None and loaded.voxel_mm != 1:
                raise ModelError(f"{what}: these weights learnt from {loaded.voxel_mm} mm voxels: a coarse "
                                 "locator (--locator), not a segmentation network", loaded.name)
        self.step = options.step or (16 if self.device.type == "cuda" else 32)
        # on a CPU one patch at a time is ~20 % faster per patch than two (cache); GPUs like batches
        self.batch_size = options.batch_size or (2 if self.device.type == "cuda" else 1)

    def segment_file(self, path, outdir, progress: Progress | None = None) -> dict[str, Path]:
        """Segment one file and write its outputs atomically (all or none); return their paths."""
        outputs = output_paths(path, outdir, self.options)
        io.prepare_output_dir(outdir)
        io.check_outputs(list(outputs.values()), self.options.overwrite)
        volume = io.read_volume(path)
        result = self.segment_volume(volume, progress)
        self.write(result, volume, outputs)
        if progress:
            progress("write", 1.0)
        return outputs

    def segment_volume(self, volume: io.Volume, progress: Progress | None = None) -> Segmentation:
        """The pipeline on one volume in memory; nothing is written."""
        import torch

        clock = _Clock(self.device)
        report = progress or (lambda stage, fraction: None)
        report("conform", 0.0)
        conformed = conform(volume, self.device)
        image = conformed.image
        clock.lap("conform")
        report("conform", 1.0)

        # the tiling's box: where the coarse pass finds structures (or the whole non-zero box)
        patch_counts = {}
        classes = predict_classes(self.model.network, image, self.step, self.batch_size,
                                  self.options.tiling, lambda f: report("predict", f), patch_counts,
                                  locator=self.locator.network if self.locator else None,
                                  tta=self.options.tta, locator_mm=self.locator.voxel_mm if self.locator else 1)
        if classes.device != image.device:  # fell back to the CPU on CUDA OOM: next scan tries again
            for loaded in (self.model, self.locator):
                if loaded is not None:
                    loaded.network.to(self.device)
        lut = torch.as_tensor(class_to_label(ASEG), device=classes.device)
        labels = lut[classes].to(torch.int32)
        clock.lap("predict")

        subfields = None
        if self.hippocampus is not None:
            subfields = segment_subfields(self.hippocampus.network, image.to(labels.device), labels)
            clock.lap("hippocampus")

        native = to_native(labels, conformed.affine, volume.data.shape, volume.affine)
        # aseg labels end at 77: a quarter of the bytes to copy off the device (and to write)
        result = Segmentation(native.to(torch.uint8).cpu().numpy(), volume.affine)
        if subfields is not None:
            result.subfields = to_native(subfields, conformed.affine, volume.data.shape,
                                         volume.affine).cpu().numpy()
        if self.options.qc:
            result.qc_slices = qc.orthogonal_slices(image.to(labels.device), labels)
        clock.lap("native")
        result.timings = clock.laps
        result.patches = patch_counts
        return result

    def write(self, result: Segmentation, volume: io.Volume, outputs: dict[str, Path]) -> None:
        """Write every output of one subject: all appear together or none does."""
        keys = list(outputs)
        # the writers run side by side: gzip and PNG encoding release the GIL for most of their
        # time, and a scan on the GPU spent about as long writing as predicting (session 5). The pool is left
        # (every job done) before atomic_outputs renames the files or, on an error, removes them.
        with io.atomic_outputs([outputs[k] for k in keys], self.options.overwrite) as temps, \
                ThreadPoolExecutor(max_workers=3) as pool:
            temp = dict(zip(keys, temps))
            jobs = [pool.submit(io.save_labels, result.labels, result.affine, temp["labels"]),
                    pool.submit(self._write_volumes, result, temp["volumes"])]
            if "qc" in temp:
                jobs.append(pool.submit(qc.save_qc_png, *result.qc_slices, temp["qc"],
                                        title=os.path.basename(volume.path or "")))
            if "subfields" in temp:
                jobs.append(pool.submit(io.save_labels, result.subfields, result.affine, temp["subfields"]))
            for job in jobs:
                job.result()  # the first failure is raised as it is

    @staticmethod
    def _write_volumes(result: Segmentation, path) -> None:
        rows = stats.volume_table(result.labels, result.affine)
        if result.subfields is not None:
            rows += stats.volume_table(result.subfields, result.affine, HIPPOCAMPAL_SUBFIELDS)
        Path(path).write_text(stats.table_csv(rows), encoding="utf-8")


class _Clock:
    """Stage timings in seconds; synchronises CUDA so each stage is charged its own work."""

    def __init__(self, device):
        self.device, self.laps, self.last = device, {}, time.perf_counter()

    def lap(self, name: str) -> None:
        if self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        self.laps[name] = now - self.last
        self.last = now


def segment(path, outdir, options: SegmentOptions | None = None, progress: Progress | None = None) -> dict[str, Path]:
    """Segment one T1 file into `outdir`; see `Segmenter` to reuse the model across files."""
    return Segmenter(options or SegmentOptions()).segment_file(path, outdir, progress)
