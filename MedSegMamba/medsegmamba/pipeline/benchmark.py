"""Time the end-to-end path per scan, stage by stage, on a given or synthetic head-like volume.

Stages: read (file -> Volume), conform, predict (crop/pad, patches, model, add, argmax, labels),
native (back to the input's grid, to host), write (label map, CSV, QC picture). The model is a
preset name with seeded random weights (`paper`, `small`, ...), a checkpoint path or shipped weights.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from .. import io

log = logging.getLogger(__name__)
RANDOM_WEIGHTS = "random weights (benchmark)"  # provenance of a preset built by make_model


def synthetic_head(shape=(192, 224, 192), voxel_mm=1.0, tilt_degrees=10.0, seed: int = 0) -> io.Volume:
    """A head-like T1: nested ellipsoids (scalp, skull, CSF, grey, white matter, ventricles) + noise.

    Stored RAS with a tilt about the x axis, so conforming it is real work (reorient + resample).
    """
    rng = np.random.default_rng(seed)
    axes = [(np.arange(n) - (n - 1) / 2) * voxel_mm for n in shape]
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    radii = 0.42 * np.array(shape) * voxel_mm  # about 75, 95, 80 mm at the default size
    r = np.sqrt((x / radii[0]) ** 2 + (y / radii[1]) ** 2 + (z / radii[2]) ** 2)
    data = np.zeros(np.broadcast_shapes(x.shape, y.shape, z.shape), np.float32)
    for outer, value in ((1.0, 60), (0.93, 10), (0.88, 30), (0.85, 70), (0.7, 110)):
        data[r <= outer] = value
    ventricles = np.sqrt(((np.abs(x) - radii[0] / 6) / (radii[0] / 12)) ** 2 + (y / (radii[1] / 4)) ** 2
                         + (z / (radii[2] / 8)) ** 2) <= 1
    data[ventricles] = 25
    data = (data + rng.normal(0, 3, data.shape).astype(np.float32)) * (data > 0)
    angle = np.deg2rad(tilt_degrees)
    affine = np.eye(4)
    affine[:3, :3] = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)],
                               [0, np.sin(angle), np.cos(angle)]]) * voxel_mm
    affine[:3, 3] = -affine[:3, :3] @ (np.array(shape) / 2)
    return io.Volume(np.clip(data, 0, None).astype(np.float32), affine, None)


def make_model(spec, device):
    """A LoadedModel from a preset name (seeded random weights), a checkpoint path or shipped weights."""
    import torch

    from .loading import LoadedModel, load_model

    try:
        from ..models import PRESETS, build_model
    except ImportError:
        PRESETS, build_model = {}, None
    if isinstance(spec, str) and spec in PRESETS:
        torch.manual_seed(0)
        network = build_model(spec).to(device).eval()
        return LoadedModel(network, f"{spec} (random weights)", {"provenance": RANDOM_WEIGHTS})
    return load_model(spec, device)


def run_benchmark(model="small", input_path=None, device="auto", step=None, batch_size=None,
                  repeat: int = 2, volume: io.Volume | None = None, tiling: str | None = None,
                  locator=None, tta: bool = False) -> dict:
    """One warm-up run and `repeat` timed runs; per-stage median seconds and peak GPU memory.

    tiling None: "full" for a preset with random weights (they label every voxel, so a coarse
    pass would find the whole head) unless a `locator` (trained weights for the coarse pass) is
    given, else "focused" as `segment` does."""
    import torch

    from .loading import resolve_device
    from .segment import SegmentOptions, Segmenter

    device = resolve_device(device)
    loaded = make_model(model, device)
    if tiling is None:
        random_weights = loaded.metadata.get("provenance") == RANDOM_WEIGHTS
        tiling = "full" if random_weights and locator in (None, "self") else "focused"
    options = SegmentOptions(model=loaded.network, device=str(device), step=step, batch_size=batch_size,
                             tiling=tiling, locator=locator, tta=tta, overwrite=True)
    segmenter = Segmenter(options)
    with tempfile.TemporaryDirectory(prefix="medsegmamba-bench-") as scratch:
        if input_path is None:
            volume = volume or synthetic_head()
            input_path = Path(scratch) / "synthetic_T1.nii.gz"
            import nibabel as nib

            nib.save(nib.Nifti1Image(volume.data, volume.affine), input_path)
        runs = []
        for index in range(1 + max(repeat, 1)):
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            runs.append(_timed_run(segmenter, input_path, Path(scratch) / "out"))
            if device.type == "cuda":
                runs[-1]["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
            log.info("run %d: %.2f s", index, runs[-1]["total"])
        shape = list(io.read_volume(input_path).data.shape)
    timed = runs[1:]
    result = {"model": loaded.name, "parameters": sum(p.numel() for p in loaded.network.parameters()),
              "device": str(device), "device_name": _device_name(device), "step": segmenter.step,
              "batch_size": segmenter.batch_size, "tiling": tiling, "tta": tta,
              "locator": segmenter.locator.name if segmenter.locator else None,
              "patches": timed[0]["patches"],
              "input_shape": shape, "repeat": len(timed),
              "seconds": {k: statistics.median(r[k] for r in timed) for k in timed[0]
                          if k not in ("peak_gpu_mib", "patches")},
              "runs": runs}
    if device.type == "cuda":
        result["peak_gpu_mib"] = max(r["peak_gpu_mib"] for r in runs)
    return result


def _timed_run(segmenter, input_path, outdir) -> dict:
    from .segment import output_paths

    start = time.perf_counter()
    volume = io.read_volume(input_path)
    read = time.perf_counter() - start
    result = segmenter.segment_volume(volume)
    mark = time.perf_counter()
    io.prepare_output_dir(outdir)
    segmenter.write(result, volume, output_paths(input_path, outdir, segmenter.options))
    times = {"read": read, **result.timings, "write": time.perf_counter() - mark}
    times["patches"] = sum(result.patches.values())
    times["total"] = time.perf_counter() - start
    # the device's share: what a faster disk / background writer would leave
    times["compute"] = sum(times[k] for k in ("conform", "predict", "hippocampus", "native") if k in times)
    return times


def _device_name(device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def format_results(results: list[dict]) -> str:
    """A text table: one row per (model, step) run, stage medians in seconds."""
    stages = ["read", "conform", "predict", "native", "write", "compute", "total"]
    header = (f"{'model':<28} {'device':<6} {'tiling':<7} {'step':>4} {'batch':>5} {'patches':>7} "
              + " ".join(f"{s:>8}" for s in stages))
    header += f" {'peak_GiB':>8}"
    lines = [header]
    for r in results:
        peak = f"{r['peak_gpu_mib'] / 1024:8.2f}" if "peak_gpu_mib" in r else f"{'-':>8}"
        lines.append(f"{r['model'][:28]:<28} {r['device'][:6]:<6} {r.get('tiling', 'full'):<7} {r['step']:>4} "
                     f"{r['batch_size']:>5} {r.get('patches', '-'):>7} "
                     + " ".join(f"{r['seconds'].get(s, 0.0):8.2f}" for s in stages) + f" {peak}")
    return "\n".join(lines)
