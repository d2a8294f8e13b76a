"""The `medsegmamba` command: segment, demo, benchmark (+ train, evaluate, distill when installed).

Only argparse and the standard library at import time, so `medsegmamba --help` is instant; torch
and the pipeline are imported inside the commands. Errors print one line,
`medsegmamba: error: <file>: <problem>`, and exit non-zero; `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from pathlib import Path

from . import __version__
from .memory import keep_freed_memory

PROG = "medsegmamba"
SUFFIXES = (".nii.gz", ".nii", ".mgz", ".nrrd")
log = logging.getLogger(PROG)

# ---------------------------------------------------------------- inputs


def find_inputs(paths: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand files, folders and BIDS roots into image files; returns (files, [(path, problem)])."""
    files, problems = [], []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            problems.append((raw, "no such file or folder"))
        elif path.is_file():
            files.append(path)
        else:
            is_bids = any(p.is_dir() for p in path.glob("sub-*"))
            found = _bids_t1s(path) if is_bids else _images_in(path)
            if found:
                files += found
            else:
                problems.append((raw, "no images found in this folder (expected "
                                      + ", ".join(SUFFIXES) + " files, or a BIDS dataset)"))
    return files, problems


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(SUFFIXES)
                  and not p.name.startswith("."))


def _bids_t1s(root: Path) -> list[Path]:
    """Every sub-*/anat/*_T1w.nii* and sub-*/ses-*/anat/*_T1w.nii* of a BIDS dataset."""
    found = list(root.glob("sub-*/anat/*_T1w.nii*")) + list(root.glob("sub-*/ses-*/anat/*_T1w.nii*"))
    return sorted(p for p in found if p.name.endswith((".nii", ".nii.gz")))


# ---------------------------------------------------------------- progress


class Reporter:
    """Per-subject progress: a tqdm bar (stderr), JSON lines (stdout), or nothing."""

    # each stage's share of a subject's overall fraction
    SPANS = {"conform": (0.0, 0.1), "predict": (0.1, 0.9), "write": (0.9, 1.0)}

    def __init__(self, mode: str):
        self.mode, self.bar = mode, None

    def start(self, subject: str) -> None:
        self._close()
        self.subject = subject

    def __call__(self, stage: str, fraction: float) -> None:
        low, high = self.SPANS.get(stage, (0.0, 1.0))
        overall = round(low + (high - low) * min(max(fraction, 0.0), 1.0), 4)
        if self.mode == "json":
            self._emit({"event": "progress", "subject": self.subject, "stage": stage, "fraction": overall})
        elif self.mode == "bar":
            if self.bar is None:  # opened on the first report, so planning and errors draw no bar
                from tqdm import tqdm

                self.bar = tqdm(total=100, desc=Path(self.subject).name, unit="%", file=sys.stderr, leave=False,
                                bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}")
            self.bar.set_postfix_str(stage, refresh=False)
            self.bar.update(int(overall * 100) - self.bar.n)

    def done(self, outputs: dict) -> None:
        self._close()
        outputs = {k: str(v) for k, v in outputs.items()}
        if self.mode == "json":
            self._emit({"event": "done", "subject": self.subject, "outputs": outputs})
        elif self.mode == "bar":
            print(f"{self.subject}: wrote {', '.join(outputs.values())}", flush=True)

    def skipped(self, outputs: dict) -> None:
        self._close()
        if self.mode == "json":
            self._emit({"event": "skipped", "subject": self.subject,
                        "outputs": {k: str(v) for k, v in outputs.items()}})
        elif self.mode == "bar":
            print(f"{self.subject}: skipped, outputs already exist (--overwrite to redo)", flush=True)

    def error(self, message: str) -> None:
        self._close()
        if self.mode == "json":
            self._emit({"event": "error", "subject": self.subject, "message": message})
        _error_line(message)

    def _close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    @staticmethod
    def _emit(event: dict) -> None:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


def _error_line(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- segment


def _add_model_options(parser: argparse.ArgumentParser, step_default_help: str) -> None:
    parser.add_argument("--model", default="default", metavar="NAME|PATH",
                        help="shipped weights name or a .safetensors checkpoint (default: %(default)s)")
    parser.add_argument("--device", default="auto", metavar="auto|cpu|cuda[:i]",
                        help="where the model runs; auto picks CUDA when present (default: %(default)s)")
    parser.add_argument("--step", type=int, choices=(16, 32), default=None,
                        help=f"patch step in voxels: 16 as in the paper, 32 about 4x faster ({step_default_help})")
    parser.add_argument("--batch-size", type=int, default=None, metavar="N",
                        help="patches per forward pass; halved automatically on CUDA out-of-memory "
                             "(default: 2 on CUDA, 1 on CPU)")
    parser.add_argument("--tiling", choices=("focused", "full"), default="focused",
                        help="focused: a coarse pass of non-overlapping patches finds the structures and only "
                             "their box is tiled at --step (3-10x fewer patches); full: the whole head box at "
                             "--step, as in the paper (default: focused; `benchmark` uses full for presets with random "
                             "weights under `--locator self`: they label every voxel)")
    parser.add_argument("--locator", default="locator", metavar="NAME|PATH|self",
                        help="weights of focused tiling's coarse pass, which finds the structures' box "
                             "(default: the shipped `locator`, which reads the head at 3 mm in one patch); "
                             "`self`: the --model itself at 1 mm, 8-27 patches")


def _add_tta_option(parser: argparse.ArgumentParser, default: bool) -> None:
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction, default=default,
                        help="test-time augmentation: average the plain and the left-right mirrored predictions "
                             "of each patch; about doubles the network time (default: %s)" % ("on" if default else "off"))


def add_segment_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="T1 images (.nii, .nii.gz, .mgz, .nrrd), folders of them, or a BIDS dataset root "
                             "(every sub-*/[ses-*/]anat/*_T1w.nii*)")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR",
                        help="folder for <stem>_aseg.nii.gz, <stem>_volumes.csv, <stem>_qc.png")
    _add_model_options(parser, "default: 16 on CUDA, 32 on CPU")
    _add_tta_option(parser, default=True)
    parser.add_argument("--hippocampus", default=None, metavar="NAME|PATH",
                        help="hippocampal subfield weights; adds <stem>_hipposubfields.* (default: off)")
    parser.add_argument("--format", dest="output_format", choices=("nii.gz", "nii", "mgz"), default="nii.gz",
                        help="label map format (default: %(default)s)")
    parser.add_argument("--no-qc", dest="qc", action="store_false", help="do not draw the QC picture")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing outputs (default: skip subjects whose outputs all exist)")
    parser.add_argument("--progress", choices=("bar", "json", "none"), default="bar",
                        help="bar: a progress bar on stderr; json: one JSON object per line on stdout "
                             "(events progress, done, skipped, error); none (default: %(default)s)")


def run_segment(args: argparse.Namespace) -> int:
    from .errors import MedSegMambaError
    from .io import prepare_output_dir, stem
    from .pipeline.segment import SegmentOptions, Segmenter, output_paths

    files, problems = find_inputs(args.inputs)
    if files:  # nothing to do: no output folder either
        prepare_output_dir(args.output)
    options = SegmentOptions(model=args.model, device=args.device, step=args.step, batch_size=args.batch_size,
                             tiling=args.tiling, locator=args.locator, tta=args.tta,
                             hippocampus=args.hippocampus, overwrite=args.overwrite,
                             output_format=args.output_format, qc=args.qc)
    reporter = Reporter(args.progress)
    for path, problem in problems:
        reporter.start(path)
        reporter.error(f"{path}: {problem}")
    todo, seen = [], {}
    for path in files:
        reporter.start(str(path))
        outputs = output_paths(path, args.output, options)
        if stem(path) in seen:
            reporter.error(f"{path}: output names clash with {seen[stem(path)]} (same file name)")
            problems.append((str(path), "clash"))
        elif not args.overwrite and all(p.exists() for p in outputs.values()):
            reporter.skipped(outputs)
        else:
            todo.append(path)
        seen.setdefault(stem(path), path)
    if not todo:
        return 1 if problems else 0

    segmenter = Segmenter(options)  # model errors are fatal: raised to main
    failures = len(problems)
    for path in todo:
        reporter.start(str(path))
        try:
            reporter.done(segmenter.segment_file(path, args.output, reporter))
        except MedSegMambaError as error:
            failures += 1
            reporter.error(str(error) if error.path else f"{path}: {error}")
            if args.debug:
                log.exception("traceback")
    return 1 if failures else 0


# ---------------------------------------------------------------- demo


def mni_template_path() -> Path:
    """The MNI152 T1 template (1 mm) bundled inside the nilearn package: nothing is downloaded."""
    from importlib.util import find_spec

    from .errors import InputError

    spec = find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the demo needs nilearn for its bundled MNI152 template: pip install 'medsegmamba[demo]'")
    path = (Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
            / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
    if not path.is_file():
        raise InputError("nilearn's bundled MNI152 template not found", path)
    return path


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", default="demo_out", metavar="DIR",
                        help="output folder (default: %(default)s)")
    _add_model_options(parser, "default: 16 on CUDA, 32 on CPU")
    _add_tta_option(parser, default=True)
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def run_demo(args: argparse.Namespace) -> int:
    from .pipeline.segment import SegmentOptions, Segmenter
    from .stats import format_table, volume_table

    template = mni_template_path()
    options = SegmentOptions(model=args.model, device=args.device, step=args.step, batch_size=args.batch_size,
                             tiling=args.tiling, locator=args.locator, tta=args.tta, overwrite=True)
    segmenter = Segmenter(options)
    print(f"Weights: {describe_weights(segmenter.model)}")
    print(f"Input: MNI152 T1 template bundled with nilearn ({template})")
    from .io import check_outputs, prepare_output_dir
    from .pipeline.segment import output_paths

    prepare_output_dir(args.output)
    outputs = output_paths(Path("mni152_T1.nii.gz"), args.output, options)
    check_outputs(list(outputs.values()), args.overwrite)
    from .io import read_volume

    volume = read_volume(template)
    reporter = Reporter("bar")
    reporter.start("mni152_T1")
    result = segmenter.segment_volume(volume, reporter)
    segmenter.write(result, volume, outputs)
    reporter.done(outputs)
    print(format_table(volume_table(result.labels, result.affine)))
    print(f"Device: {segmenter.device}, step {segmenter.step}; seconds per stage: "
          + ", ".join(f"{k} {v:.1f}" for k, v in result.timings.items()))
    return 0


def describe_weights(model) -> str:
    """One line on what the weights are, from the registry entry / checkpoint metadata."""
    meta = model.metadata or {}
    parts = [str(model.name)]
    for key in ("provenance", "description", "trained_on", "training_data", "metrics"):
        if meta.get(key):
            value = meta[key]
            if key == "metrics" and isinstance(value, dict):
                # Scalars only: the per-structure tables belong in the model card, not on one line.
                value = {k: (round(v, 3) if isinstance(v, float) else v)
                         for k, v in value.items() if not isinstance(v, (dict, list))}
            parts.append(f"{key}: {json.dumps(value) if isinstance(value, (dict, list)) else value}")
    if len(parts) == 1:
        parts.append("no provenance recorded with these weights")
    return "; ".join(parts)


# ---------------------------------------------------------------- benchmark


def add_benchmark_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", nargs="?", default=None, metavar="INPUT",
                        help="a T1 image to time (default: a synthetic head-like volume)")
    _add_model_options(parser, "default: 16 on CUDA, 32 on CPU")
    # random-weight presets label every voxel, so their own coarse pass (`--locator self`) would find
    # the whole head and they get full tiling; with the shipped locator (the default) they, like trained
    # weights, get focused tiling, as `segment` does
    parser.set_defaults(model="small", tiling=None)
    _add_tta_option(parser, default=False)  # times the network as it is; --tta times segment's default
    parser.add_argument("--repeat", type=int, default=2, metavar="N",
                        help="timed runs after one warm-up run (default: %(default)s)")
    parser.add_argument("--json-out", default=None, metavar="FILE", help="also write the results as JSON")


def run_benchmark_command(args: argparse.Namespace) -> int:
    from .io import write_text
    from .pipeline.benchmark import format_results, run_benchmark

    result = run_benchmark(args.model, input_path=args.input, device=args.device, step=args.step,
                           batch_size=args.batch_size, repeat=args.repeat, tiling=args.tiling,
                           locator=args.locator, tta=args.tta)
    print(format_results([result]))
    if args.json_out:
        write_text(json.dumps(result, indent=2) + "\n", args.json_out, overwrite=True)
    return 0


# ---------------------------------------------------------------- main

COMMANDS = {
    "segment": ("segment T1 images into FreeSurfer subcortical labels", add_segment_arguments, run_segment),
    "demo": ("segment the MNI152 template bundled with nilearn using the default weights",
             add_demo_arguments, run_demo),
    "benchmark": ("time the end-to-end path per scan, stage by stage", add_benchmark_arguments,
                  run_benchmark_command),
}
# subcommands owned by other modules: (module, help); left out if the module is missing
EXTERNAL = {"train": ("medsegmamba.train.command", "train a network on labelled data"),
            "evaluate": ("medsegmamba.evaluate", "score label maps against references (DSC, VS, ASSD)"),
            "distill": ("medsegmamba.distill.command", "distil a compact student from a trained teacher")}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Subcortical segmentation of T1 brain MRI "
                                     "with the 3D CNN-Mamba network MedSegMamba.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (summary, add, run) in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary)
        add(sub)
        _add_common(sub)
        sub.set_defaults(run=run)
    for name, (module_name, summary) in EXTERNAL.items():
        try:
            module = importlib.import_module(module_name)
        except Exception as error:  # a missing or broken optional part must not break `segment`
            log.debug("subcommand %s left out: %s", name, error)
            continue
        if not (hasattr(module, "add_arguments") and hasattr(module, "run")):
            continue
        sub = commands.add_parser(name, help=summary, description=summary)
        module.add_arguments(sub)
        _add_common(sub)
        sub.set_defaults(run=module.run)
    return parser


def _add_common(parser: argparse.ArgumentParser) -> None:
    if not any("--debug" in a.option_strings for a in parser._actions):
        parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    if not any("--verbose" in a.option_strings for a in parser._actions):
        parser.add_argument("-v", "--verbose", action="store_true", help="log what each stage does")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    level = logging.DEBUG if debug else logging.INFO if getattr(args, "verbose", False) else logging.WARNING
    logging.basicConfig(level=level, format=f"{PROG}: %(levelname)s: %(message)s", stream=sys.stderr, force=True)
    keep_freed_memory()  # CPU inference: ~25 % less time, no page faults (memory.py)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        _error_line("interrupted")
        return 130
    except Exception as error:  # noqa: BLE001 - the one place errors become a message and a status
        from .errors import MedSegMambaError

        if debug:
            log.exception("traceback")
        if isinstance(error, MedSegMambaError):
            _error_line(str(error))
        else:
            _error_line(f"unexpected {type(error).__name__}: {error} (run with --debug for the traceback)")
        return 1


if __name__ == "__main__":
    sys.exit(main())
