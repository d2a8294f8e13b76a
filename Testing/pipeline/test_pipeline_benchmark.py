"""The benchmark runs end to end on a tiny synthetic head and reports every stage."""

import numpy as np

from medsegmamba.pipeline.benchmark import format_results, run_benchmark, synthetic_head


def test_synthetic_head_is_head_like():
    head = synthetic_head(shape=(40, 44, 40))
    values = np.unique(np.round(head.data[head.data > 0], -1))
    assert head.data.shape == (40, 44, 40) and (head.data == 0).mean() > 0.3 and len(values) > 5
    assert not np.allclose(head.affine[:3, :3], np.diag(np.diag(head.affine[:3, :3])))  # tilted


def test_run_benchmark_reports_stages(standin):
    result = run_benchmark(standin, device="cpu", step=32, repeat=1, volume=synthetic_head(shape=(40, 44, 40)))
    assert set(result["seconds"]) == {"read", "conform", "predict", "native", "write", "compute", "total"}
    assert result["seconds"]["total"] >= result["seconds"]["predict"] > 0
    assert result["step"] == 32 and len(result["runs"]) == 2
    # a 40x44x40 head is one coarse patch; the stand-in labels most of it, so one fine patch follows
    assert result["tiling"] == "focused" and result["patches"] == 2
    table = format_results([result])
    header = table.splitlines()[0].split()
    assert header[:6] == ["model", "device", "tiling", "step", "batch", "patches"] and "IntensityBins" in table


def test_a_random_preset_with_a_locator_gets_focused_tiling(standin):
    # random weights label every voxel, so alone they get full tiling; a locator finds their box
    head = synthetic_head(shape=(40, 44, 40))
    alone = run_benchmark("student-t3", device="cpu", step=32, repeat=1, volume=head)
    located = run_benchmark("student-t3", device="cpu", step=32, repeat=1, volume=head, locator=standin)
    assert alone["tiling"] == "full" and alone["locator"] is None and alone["patches"] == 1
    itself = run_benchmark("student-t3", device="cpu", step=32, repeat=1, volume=head, locator="self")
    assert itself["tiling"] == "full" and itself["locator"] is None  # `--locator self`: the preset alone
    assert located["tiling"] == "focused" and located["locator"] == "IntensityBins"
    assert located["patches"] == 2  # the stand-in's coarse patch, then the preset's fine one
