"""The `medsegmamba` command, run in-process through main(argv)."""

import json
import subprocess
import sys
import time

import nibabel as nib
import numpy as np
import pytest
import torch

from medsegmamba import cli
from medsegmamba.pipeline import segment as segment_module
from medsegmamba.pipeline.loading import LoadedModel


class Bins(torch.nn.Module):
    """Cheap stand-in network: class = intensity level bin (see Testing/pipeline/conftest.py)."""

    def forward(self, x):
        centres = torch.arange(32, dtype=torch.float32).view(1, -1, 1, 1, 1)
        return torch.softmax(-(x * 31 - centres) ** 2, dim=1)


@pytest.fixture
def standin_model(monkeypatch):
    """Every --model resolves to the stand-in, so the CLI's own work is what is tested."""
    monkeypatch.setattr(segment_module, "load_model", lambda spec, device: LoadedModel(Bins(), "stand-in", {}))


def _t1(path, shape=(40, 40, 40), affine=None, data=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    if data is None:
        data = np.zeros(shape, np.float32)
        data[4:-4, 4:-4, 4:-4] = np.random.default_rng(0).uniform(10, 200, [n - 8 for n in shape])
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), path)
    return path


def _run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def _files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("command", [[], ["segment"], ["demo"], ["benchmark"]])
def test_every_help_is_complete(capsys, command):
    with pytest.raises(SystemExit) as done:
        cli.main(command + ["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "usage: medsegmamba" in text
    if command == ["segment"]:
        for option in ("--model", "--device", "--step", "--batch-size", "--hippocampus", "--overwrite",
                       "--progress", "--format", "--tta", "BIDS"):
            assert option in text


def test_help_is_instant_and_does_not_import_torch():
    code = "import sys, medsegmamba.cli as c; c.build_parser(); print('torch' in sys.modules)"
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
    assert time.perf_counter() - start < 10


def test_segment_writes_three_outputs(tmp_path, capsys, standin_model):
    t1 = _t1(tmp_path / "in" / "sub-01_T1w.nii.gz")
    status, out, err = _run(capsys, "segment", t1, "-o", tmp_path / "out", "--device", "cpu", "--step", "32",
                            "--progress", "none")
    assert status == 0, err
    assert _files(tmp_path / "out") == ["sub-01_T1w_aseg.nii.gz", "sub-01_T1w_qc.png", "sub-01_T1w_volumes.csv"]
    status, out, err = _run(capsys, "segment", t1, "-o", tmp_path / "mgz", "--format", "mgz", "--no-qc")
    assert status == 0 and _files(tmp_path / "mgz") == ["sub-01_T1w_aseg.mgz", "sub-01_T1w_volumes.csv"]
    assert out.startswith("sub-01_T1w.nii.gz: wrote") or "wrote" in out


def _bad_files(tmp_path):
    full = _t1(tmp_path / "in" / "full.nii.gz")
    cut = tmp_path / "in" / "cut.nii.gz"
    cut.write_bytes(full.read_bytes()[:2000])
    full.unlink()
    return {
        "missing": (tmp_path / "in" / "absent.nii.gz", "no such file"),
        "truncated": (cut, "truncated or corrupt"),
        "4D": (_t1(tmp_path / "in" / "dwi.nii.gz", data=np.ones((5, 5, 5, 3), np.float32)), "3 volumes"),
        "2D": (_t1(tmp_path / "in" / "slice.nii.gz", data=np.ones((5, 5), np.float32)), "2D image"),
        "NaN": (_t1(tmp_path / "in" / "nan.nii.gz", data=np.full((5, 5, 5), np.nan, np.float32)), "NaN"),
        "zero": (_t1(tmp_path / "in" / "zero.nii.gz", data=np.zeros((5, 5, 5), np.float32)), "all voxels are 0"),
        "constant": (_t1(tmp_path / "in" / "flat.nii.gz", data=np.full((5, 5, 5), 3, np.float32)), "constant"),
        "not an image": ((tmp_path / "in" / "x.nii").write_text("hello") and tmp_path / "in" / "x.nii",
                         "not a readable image"),
    }


@pytest.mark.parametrize("case", ["missing", "truncated", "4D", "2D", "NaN", "zero", "constant", "not an image"])
def test_bad_input_is_one_clear_line(tmp_path, capsys, standin_model, case):
    path, problem = _bad_files(tmp_path)[case]
    status, out, err = _run(capsys, "segment", path, "-o", tmp_path / "out", "--progress", "none")
    assert status != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"medsegmamba: error: {path}: ") and problem in lines[0]
    assert "Traceback" not in err
    assert _files(tmp_path / "out") == []


def test_folder_without_images(tmp_path, capsys, standin_model):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    status, out, err = _run(capsys, "segment", tmp_path / "empty", "-o", tmp_path / "out")
    assert status != 0 and f"medsegmamba: error: {tmp_path / 'empty'}: no images found" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_unwritable_output_folder(tmp_path, capsys, standin_model):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    status, out, err = _run(capsys, "segment", _t1(tmp_path / "t1.nii.gz"), "-o", blocker / "out")
    assert status != 0
    assert err.strip() == f"medsegmamba: error: {blocker / 'out'}: cannot create the output folder (Not a directory)"


def test_existing_output_without_overwrite(tmp_path, capsys, standin_model):
    t1, out = _t1(tmp_path / "t1.nii.gz"), tmp_path / "out"
    out.mkdir()
    (out / "t1_volumes.csv").write_text("mine\n")
    status, _, err = _run(capsys, "segment", t1, "-o", out, "--progress", "none")
    assert status != 0 and "Traceback" not in err
    assert err.strip() == f"medsegmamba: error: {out / 't1_volumes.csv'}: output already exists (use --overwrite to replace it)"
    assert _files(out) == ["t1_volumes.csv"] and (out / "t1_volumes.csv").read_text() == "mine\n"
    assert _run(capsys, "segment", t1, "-o", out, "--overwrite", "--progress", "none")[0] == 0
    assert len(_files(out)) == 3 and (out / "t1_volumes.csv").read_text().startswith("label,")


def test_many_subjects_bad_one_reported_others_run_and_done_ones_skipped(tmp_path, capsys, standin_model):
    good = [_t1(tmp_path / "in" / f"s{i}.nii.gz") for i in range(2)]
    bad = _t1(tmp_path / "in" / "bad.nii.gz", data=np.zeros((5, 5, 5), np.float32))
    status, out, err = _run(capsys, "segment", tmp_path / "in", "-o", tmp_path / "out", "--progress", "none")
    assert status == 1
    assert err.strip() == f"medsegmamba: error: {bad}: all voxels are 0 (empty image)"
    assert len(_files(tmp_path / "out")) == 6
    stamp = (tmp_path / "out" / "s0_aseg.nii.gz").stat().st_mtime_ns
    status, out, err = _run(capsys, "segment", *good, "-o", tmp_path / "out")
    assert status == 0 and out.count("skipped") == 2
    assert (tmp_path / "out" / "s0_aseg.nii.gz").stat().st_mtime_ns == stamp


def test_bids_dataset(tmp_path, capsys, standin_model):
    root = tmp_path / "bids"
    (root / "sub-01" / "anat").mkdir(parents=True)
    (root / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.8.0"}')
    _t1(root / "sub-01" / "anat" / "sub-01_T1w.nii.gz")
    _t1(root / "sub-02" / "ses-1" / "anat" / "sub-02_ses-1_T1w.nii.gz")
    _t1(root / "sub-01" / "anat" / "sub-01_T2w.nii.gz")  # not a T1: ignored
    _t1(root / "derivatives" / "sub-01_T1w.nii.gz")  # not in sub-*: ignored
    status, out, err = _run(capsys, "segment", root, "-o", tmp_path / "out", "--progress", "json")
    assert status == 0, err
    names = _files(tmp_path / "out")
    assert len(names) == 6 and "sub-02_ses-1_T1w_aseg.nii.gz" in names and not any("T2w" in n for n in names)


def test_json_progress_protocol(tmp_path, capsys, standin_model):
    t1 = _t1(tmp_path / "t1.nii.gz")
    status, out, err = _run(capsys, "segment", t1, tmp_path / "nope.nii.gz", "-o", tmp_path / "out",
                            "--progress", "json")
    events = [json.loads(line) for line in out.splitlines()]  # every stdout line is JSON
    assert status == 1
    errors = [e for e in events if e["event"] == "error"]
    assert len(errors) == 1 and errors[0]["subject"] == str(tmp_path / "nope.nii.gz")
    progress = [e for e in events if e["event"] == "progress"]
    assert {e["stage"] for e in progress} == {"conform", "predict", "write"}
    fractions = [e["fraction"] for e in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    done = events[-1]
    assert done["event"] == "done" and done["subject"] == str(t1)
    assert set(done["outputs"]) == {"labels", "volumes", "qc"}


def test_real_medsegmamba_end_to_end_from_a_checkpoint(tmp_path, capsys):
    """The real network (tiny widths) from a .safetensors checkpoint, oblique anisotropic input."""
    from medsegmamba.models import build_model, get_config, save_checkpoint

    config = get_config("small").replace(channels=(1, 8, 16, 32, 64, 16), num_blocks=2, d_state=4)
    torch.manual_seed(0)
    checkpoint = save_checkpoint(build_model(config), config, tmp_path / "tiny.safetensors", {"provenance": "test"})
    affine = np.array([[0.0, 0.0, 1.3, -20], [-0.9, 0.1, 0.0, 10], [0.1, 1.1, 0.0, 5], [0, 0, 0, 1]])
    t1 = _t1(tmp_path / "t1.nii.gz", shape=(36, 40, 32), affine=affine)
    status, out, err = _run(capsys, "segment", t1, "-o", tmp_path / "out", "--model", checkpoint,
                            "--device", "cpu", "--step", "32", "--progress", "none")
    assert status == 0, err
    labels = nib.load(tmp_path / "out" / "t1_aseg.nii.gz")
    assert labels.shape == (36, 40, 32)
    np.testing.assert_allclose(labels.affine, affine, atol=1e-5)


def test_tta_end_to_end_with_a_checkpoint(tmp_path, capsys, monkeypatch):
    """--tta on the real network (tiny widths) reaches its one pass (full tiling: random weights
    may label nothing in a coarse pass; that the coarse pass stays plain is test_pipeline_focus's)."""
    from medsegmamba.models import build_model, get_config, save_checkpoint
    from medsegmamba.pipeline import focus

    config = get_config("small").replace(channels=(1, 8, 16, 32, 64, 16), num_blocks=2, d_state=4)
    torch.manual_seed(0)
    checkpoint = save_checkpoint(build_model(config), config, tmp_path / "tiny.safetensors", {"provenance": "test"})
    aggregate, asked = focus.aggregate, []

    def spy(*args, tta=False, **kwargs):
        asked.append(tta)
        return aggregate(*args, tta=tta, **kwargs)

    monkeypatch.setattr(focus, "aggregate", spy)
    t1 = _t1(tmp_path / "t1.nii.gz", shape=(36, 40, 32))
    status, out, err = _run(capsys, "segment", t1, "-o", tmp_path / "out", "--model", checkpoint, "--tta",
                            "--tiling", "full", "--device", "cpu", "--step", "32", "--progress", "none")
    assert status == 0, err
    assert asked == [True]
    assert _files(tmp_path / "out") == ["t1_aseg.nii.gz", "t1_qc.png", "t1_volumes.csv"]
    assert nib.load(tmp_path / "out" / "t1_aseg.nii.gz").shape == (36, 40, 32)
    assert cli.build_parser().parse_args(["demo", "--tta"]).tta


def test_tta_is_on_by_default_for_segment_and_demo_and_off_for_benchmark():
    """The mirrored pass is the default where labels are made (it raised fsaverage's mean Dice by
    0.008-0.010 at every set of shipped weights); --no-tta turns it off; benchmark times the network
    as it is unless asked. The library's SegmentOptions default matches the CLI's."""
    from medsegmamba.pipeline.segment import SegmentOptions

    parse = cli.build_parser().parse_args
    assert parse(["segment", "t1.nii.gz", "-o", "out"]).tta
    assert not parse(["segment", "t1.nii.gz", "-o", "out", "--no-tta"]).tta
    assert parse(["demo"]).tta and not parse(["demo", "--no-tta"]).tta
    assert not parse(["benchmark"]).tta and parse(["benchmark", "--tta"]).tta
    assert SegmentOptions().tta


def test_demo_and_benchmark_pass_their_options_on(tmp_path, capsys, monkeypatch):
    """demo's --locator and --tta, and benchmark's --tta, reach the Segmenter's options (demo once
    accepted --locator and dropped it)."""
    seen = []

    class Stop(Exception):
        pass

    class Recorder:
        def __init__(self, options):
            seen.append(options)
            raise Stop

    monkeypatch.setattr(segment_module, "Segmenter", Recorder)
    for argv in (["demo", "-o", str(tmp_path / "demo"), "--locator", "default", "--no-tta", "--device", "cpu"],
                 ["demo", "-o", str(tmp_path / "demo"), "--device", "cpu"],
                 ["benchmark", "--tta", "--device", "cpu", "--step", "32"],
                 ["benchmark", "--device", "cpu", "--step", "32"]):
        assert cli.main(argv) != 0  # the recorder stops each run once it has seen the options
    assert "unexpected Stop" in capsys.readouterr().err
    assert [(o.locator, o.tta) for o in seen] == [("default", False), ("locator", True), ("locator", True),
                                                  ("locator", False)]


def test_missing_weights_file_is_a_clear_error(tmp_path, capsys):
    status, out, err = _run(capsys, "segment", _t1(tmp_path / "t1.nii.gz"), "-o", tmp_path / "out",
                            "--model", tmp_path / "nope.safetensors")
    assert status != 0 and err.strip() == f"medsegmamba: error: {tmp_path / 'nope.safetensors'}: no such weights file"
    status, out, err = _run(capsys, "segment", _t1(tmp_path / "t1.nii.gz"), "-o", tmp_path / "out2",
                            "--locator", tmp_path / "nope.safetensors")
    assert status != 0 and err.strip() == f"medsegmamba: error: {tmp_path / 'nope.safetensors'}: no such weights file"


def test_demo_uses_the_bundled_template_and_says_when_no_weights_are_shipped(tmp_path, capsys):
    from medsegmamba import weights

    template = cli.mni_template_path()
    assert template.is_file() and "nilearn" in template.parts  # inside the installed package: no download
    if weights.available():
        pytest.skip("weights are shipped: the demo would run the full model")
    status, out, err = _run(capsys, "demo", "-o", tmp_path / "demo", "--device", "cpu")
    assert status != 0 and "no pretrained weights are shipped yet" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and _files(tmp_path / "demo") == []


def test_folder_of_bids_named_files_is_a_plain_folder(tmp_path):
    _t1(tmp_path / "in" / "sub-01_T1w.nii.gz")
    files, problems = cli.find_inputs([str(tmp_path / "in")])
    assert [f.name for f in files] == ["sub-01_T1w.nii.gz"] and problems == []


@pytest.mark.slow
def test_demo_end_to_end_with_a_checkpoint(tmp_path, capsys):
    """The whole demo on the MNI template with a tiny random network (minutes on a small CPU)."""
    from medsegmamba.models import build_model, get_config, save_checkpoint

    config = get_config("small").replace(channels=(1, 8, 16, 32, 64, 16), num_blocks=2, d_state=4)
    checkpoint = save_checkpoint(build_model(config), config, tmp_path / "tiny.safetensors",
                                 {"provenance": "random weights for a test"})
    status, out, err = _run(capsys, "demo", "-o", tmp_path / "demo", "--model", checkpoint, "--device", "cpu")
    assert status == 0, err
    assert "random weights for a test" in out and "Left-Hippocampus" in out
    assert _files(tmp_path / "demo") == ["mni152_T1_aseg.nii.gz", "mni152_T1_qc.png", "mni152_T1_volumes.csv"]
    assert nib.load(tmp_path / "demo" / "mni152_T1_aseg.nii.gz").shape == nib.load(cli.mni_template_path()).shape
