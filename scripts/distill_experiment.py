#!/usr/bin/env python3
"""Compact students on one equal synthetic budget (issue #5), evaluated on fsaverage.

Arms (each trained for the same --steps on the same SynthSeg-style generator and loss):
  teacher   the larger network (or --teacher CKPT: a trained one, evaluated only)
  student   student-t1 (widths / 2), segmentation loss only
  reco      student-t1 + ReCo-KD (MS-SARD + MS-CA + softened-logit KD) from the teacher
  self      student-t1 + multi-scale self-distillation (aux heads at dec4/dec3)
  kan       the teacher-sized KAN-Mamba network (bidirectional Mamba + KAN in the bottleneck)
Each is evaluated on fsaverage (orig.mgz vs aseg.mgz): Dice per structure for the 28 structures
the training label maps hold, their mean, parameters and per-scan latency on this device.

    python3 scripts/distill_experiment.py --out $OUT                 # GPU run
    python3 scripts/distill_experiment.py --out /tmp/x --smoke       # CPU, tiny, about a minute
    python3 scripts/distill_experiment.py --out $OUT --resume runs/distill   # continue arms
    python3 scripts/distill_experiment.py --out ALL --merge RUN1 RUN2 ...    # one table of arms
                                                                            # run in separate calls
    python3 scripts/distill_experiment.py --out ALL --retime [--teacher T]   # latency again, each arm
                                                                            # alone (after arms ran
                                                                            # side by side on one GPU)
    python3 scripts/distill_experiment.py --out ALL --export-arms DIR [--teacher T]  # each arm as a
                                                          # checkpoint the CLI loads (--model PATH)

Writes OUT/results.json, OUT/results.md, OUT/<arm>.safetensors; prints the table last.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "MedSegMamba"))

from medsegmamba import labels  # noqa: E402
from medsegmamba.distill.loop import LoopOptions, train_student  # noqa: E402
from medsegmamba.distill.reco_kd import ReCoKD, ReCoKDConfig, feature_widths  # noqa: E402
from medsegmamba.distill.self_distill import SelfDistillConfig, SelfDistillation  # noqa: E402
from medsegmamba.models import MedSegMamba  # noqa: E402
from medsegmamba.models.kan_mamba import build_kan_mamba  # noqa: E402
from medsegmamba.models.students import resolve_student  # noqa: E402

log = logging.getLogger("distill_experiment")
ARMS = ("teacher", "student", "reco", "self", "kan")
NOT_IN_LABEL_MAPS = (31, 63, 77)  # choroid plexus L/R, WM hypointensities
# Teacher of the GPU run: half the paper's widths, so that it trains in a minute yet is 4x the
# student's width; the paper's 84 M network needs far more than this session's budget.
GPU_TEACHER = dict(channels=(1, 16, 32, 64, 128, 512), num_blocks=9, d_state=32)
SMOKE_TEACHER = dict(channels=(1, 16, 32, 64, 128, 32), num_blocks=1, d_state=4)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--data", type=Path, default=ROOT / ".data",
                   help="folder with label_maps/ and fsaverage/ (default .data)")
    p.add_argument("--arms", default=",".join(ARMS))
    p.add_argument("--steps", type=int, default=200, help="training steps per arm (equal budget)")
    p.add_argument("--batch", type=int, default=1, help="patches per step (the default model trained at 4)")
    p.add_argument("--kd-warmup", type=int, default=None,
                   help="steps over which the KD / self-distillation terms ramp up (default: "
                        "min(200, steps / 5); with a time limit --steps may be far more than run)")
    p.add_argument("--max-seconds-per-arm", type=float, default=50.0)
    p.add_argument("--teacher", type=Path, help="trained teacher checkpoint: skip training one")
    p.add_argument("--student", default="student-t1")
    p.add_argument("--resume", type=Path, help="folder of an earlier run: continue its arms")
    p.add_argument("--step", type=int, default=32, help="patch step for fsaverage inference")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="tiny models, 2 steps, 32^3 patches, CPU")
    p.add_argument("--merge", type=Path, nargs="+", metavar="RUN",
                   help="only join these runs' results.json (arms run in separate calls) into --out")
    p.add_argument("--export-arms", type=Path, metavar="DIR",
                   help="only write each trained arm of --out as a MedSegMamba checkpoint in DIR "
                        "(<arm>.safetensors, config in its metadata, without the training-only "
                        "adapters or heads), for `medsegmamba segment/benchmark --model DIR/<arm>.safetensors`")
    p.add_argument("--retime", action="store_true",
                   help="only time each arm of --out's results.json again, one at a time (arms trained "
                        "side by side share the GPU, so the latency they measured is not theirs alone)")
    return p.parse_args(argv)


def merge(runs, out: Path) -> dict:
    """One results.json / results.md from runs that each trained some of the arms; the runs must
    share device, budget and set-up, and an arm may appear in one run only."""
    parts = [json.loads((Path(r) / "results.json").read_text()) for r in runs]
    keys = ("device", "steps_per_arm", "batch", "patch", "step", "seg_loss")
    for r, part in zip(runs[1:], parts[1:]):
        differ = [k for k in keys if part.get(k) != parts[0].get(k)]
        if differ:
            raise SystemExit(f"--merge: {r} differs from {runs[0]} in {differ}")
    merged = {**parts[0], "arms": {}, "merged_from": [str(r) for r in runs]}
    for r, part in zip(runs, parts):
        for name, arm in part["arms"].items():
            if name in merged["arms"]:
                raise SystemExit(f"--merge: arm {name!r} appears twice (again in {r})")
            merged["arms"][name] = arm
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(merged, indent=1))
    (out / "results.md").write_text(markdown(merged))
    return merged


def _trained_arms(args, device="cpu"):
    """An earlier run's results (args.out/results.json), the arms' base shape, the teacher given by
    --teacher (or None) and, per arm, where its weights are: <arm>.safetensors in --out or in the
    runs it was merged from (None for a --teacher arm, which trained nothing)."""
    results = json.loads((args.out / "results.json").read_text())
    folders = [args.out, *map(Path, results.get("merged_from", []))]
    base = {k: tuple(v) if isinstance(v, list) else v for k, v in results["teacher_config"].items()}
    teacher = None
    if args.teacher:
        from medsegmamba.models.checkpoint import load_checkpoint
        teacher, cfg, _ = load_checkpoint(args.teacher, device=device)
        base = dict(channels=cfg.channels, num_blocks=cfg.num_blocks, d_state=cfg.d_state)
    weights = {name: next((f / f"{name}.safetensors" for f in folders if (f / f"{name}.safetensors").is_file()), None)
               for name in results["arms"]}
    return results, base, teacher, weights


def retime(args, device) -> dict:
    """Latency of every arm of args.out/results.json measured again with nothing else running."""
    results, base, teacher, weights = _trained_arms(args, device)
    image, _ = load_fsaverage(args, device)
    patch = results["patch"]
    for name, arm in results["arms"].items():
        if name == "teacher" and teacher is not None:
            model = teacher
        elif weights[name] is None:
            raise SystemExit(f"--retime: no {name}.safetensors in {args.out} or the runs merged into it")
        else:
            model = checkpoint_io(build_arm(name, args, base, patch).to(device), weights[name], load=True)
        arm["latency_s"] = latency(model, image, results["step"], patch, device)
        log.info("%s: %.3f s per scan alone", name, arm["latency_s"])
    results["latency"] = "each arm alone on the device, after training"
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    (args.out / "results.md").write_text(markdown(results))
    return results


def export_arms(args) -> list[Path]:
    """Each trained arm of args.out/results.json as a checkpoint of the model registry."""
    from medsegmamba.models.checkpoint import save_checkpoint
    from medsegmamba.models.registry import ModelConfig

    results, base, _, weights = _trained_arms(args)
    args.export_arms.mkdir(parents=True, exist_ok=True)
    written = []
    for name, arm in results["arms"].items():
        if weights[name] is None:
            continue  # the teacher given by --teacher: already a checkpoint
        model = checkpoint_io(build_arm(name, args, base, results["patch"]), weights[name], load=True)
        if name in ("teacher", "kan"):
            shape = base
        else:
            shape = resolve_student(args.student, base["channels"], base["d_state"], base["num_blocks"]).kwargs()
        config = ModelConfig(arch="kan-mamba" if name == "kan" else "medsegmamba", patch_size=results["patch"],
                             **{k: shape[k] for k in ("channels", "num_blocks", "d_state")})
        written.append(save_checkpoint(model, config, args.export_arms / f"{name}.safetensors",
                                       {"arm": name, "steps": arm["steps"], "fsaverage_mean_dice": arm["mean_dice"]}))
        log.info("%s -> %s", name, written[-1])
    return written


# ---- data -------------------------------------------------------------------------------------
def _first_existing(*folders: Path) -> Path:
    for f in folders:
        if f.is_dir():
            return f
    raise FileNotFoundError(f"none of {[str(f) for f in folders]} exists")


_GENERATOR = {}


def batches(args, device, patch, start=0):
    """The training recipe's generator (built once, re-seeded per arm: every arm sees the same
    batches; an arm resumed at `start` gets a fresh stream, the same for every arm resumed
    there); in --smoke without medsegmamba.train, a toy stand-in."""
    maps = _first_existing(args.data / "label_maps", args.data / "synthseg_label_maps",
                           Path("/work/shared/data/synthseg_label_maps"))
    try:
        from medsegmamba.distill.recipe import make_generator, synth_batches
        if "gen" not in _GENERATOR:
            t0 = time.perf_counter()
            _GENERATOR["gen"] = make_generator(maps, device, patch, args.seed)
            log.info("generator ready in %.1f s", time.perf_counter() - t0)
        return synth_batches(_GENERATOR["gen"], args.batch, args.seed + start)
    except (ImportError, AttributeError) as e:
        if not args.smoke:
            raise
        log.warning("medsegmamba.train generator unavailable (%s): smoke run uses toy patches", e)
        return _toy_batches(maps, device, patch, args.seed + start)


def _toy_batches(maps, device, patch, seed):
    """Smoke only: random crops of one label map, a random intensity per class."""
    from medsegmamba.io import read_volume

    lab = labels.label_to_class(np.asarray(read_volume(sorted(maps.glob("*.nii*"))[0]).data).astype(int))
    lab = torch.from_numpy(lab).long()
    g = torch.Generator().manual_seed(seed)
    while True:
        o = [int(torch.randint(64, 192 - patch, (1,), generator=g)) for _ in range(3)]
        t = lab[o[0]:o[0] + patch, o[1]:o[1] + patch, o[2]:o[2] + patch]
        img = torch.rand(32, generator=g)[t] + 0.05 * torch.randn(t.shape, generator=g)
        yield img[None, None].float().to(device), t[None].to(device)


SEG_LOSS = {"name": "medsegmamba.train.losses.segmentation_loss"}


def seg_loss(args):
    """The training recipe's loss; plain cross-entropy (same for every arm, recorded in the
    results) only while medsegmamba.train.losses does not exist yet."""
    try:
        from medsegmamba.distill.recipe import segmentation_loss
        return segmentation_loss()
    except (ImportError, AttributeError) as e:
        log.warning("medsegmamba.train.losses unavailable (%s): every arm uses cross-entropy", e)
        SEG_LOSS["name"] = "cross-entropy (fallback)"
        return lambda logits, target: torch.nn.functional.cross_entropy(logits, target)


# ---- evaluation -------------------------------------------------------------------------------
def load_fsaverage(args, device):
    from medsegmamba.io import read_volume
    from medsegmamba.pipeline.conform import conform

    fs = _first_existing(*(f for f in (args.data / "fsaverage", Path("/work/shared/data/fsaverage"))
                           if any(f.glob("orig.*"))))
    pick = lambda stem: next(p for p in (fs / f"{stem}.nii.gz", fs / f"{stem}.mgz") if p.is_file())
    image = conform(read_volume(pick("orig")), device=device).image
    truth = labels.label_to_class(np.asarray(read_volume(pick("aseg")).data).round().astype(int))
    if args.smoke:  # CPU check only: a 96^3 box around the subcortical structures
        box = (slice(80, 176), slice(80, 176), slice(80, 176))
        image, truth = image[box].contiguous(), truth[box]
    return image, truth


def segment(model, image, step, patch, device):
    """Class map (256^3) of the conformed image with the pipeline's tiling and aggregation."""
    from medsegmamba.pipeline.aggregate import aggregate
    from medsegmamba.pipeline.patches import bounding_box, plan_tiling

    start, stop = bounding_box((image > 0).cpu().numpy())
    tiling = plan_tiling(start, stop, step, patch)
    block = torch.zeros(tiling.padded, device=device)
    block[tiling.inner] = image[tiling.crop]
    classes = aggregate(model.eval(), block, tiling.origins, batch_size=4, patch=patch)
    out = torch.zeros(image.shape, dtype=torch.long, device=classes.device)
    out[tiling.crop] = classes[tiling.inner]
    return out.cpu().numpy()


def dice_table(pred, truth):
    rows = {}
    for k, s in enumerate(labels.ASEG):
        if k == 0 or s.label in NOT_IN_LABEL_MAPS:
            continue
        a, b = pred == k, truth == k
        denom = a.sum() + b.sum()
        rows[s.name] = float(2 * (a & b).sum() / denom) if denom else float("nan")
    return rows


def latency(model, image, step, patch, device, repeats=2):
    segment(model, image, step, patch, device)  # warm-up (kernels, autotune)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        segment(model, image, step, patch, device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return min(times)


# ---- arms -------------------------------------------------------------------------------------
def build_arm(name, args, base, patch):
    common = dict(patch_size=patch, dropout=0.1, drop_path=0.1 if not args.smoke else 0.0)
    if name == "teacher":
        return MedSegMamba(**base, **common)
    if name == "kan":
        return build_kan_mamba(**base, **common)
    spec = resolve_student(args.student, base["channels"], base["d_state"], base["num_blocks"])
    return MedSegMamba(**spec.kwargs(), **common)


def checkpoint_io(model, path, load=False, extra=None):
    """An arm's weights in one safetensors file; `extra` (the ReCo-KD adapters or the self-
    distillation heads, when the arm has them) goes in under "extra.", so that a resumed arm
    continues with them instead of new ones."""
    from safetensors.torch import load_file, save_file

    if load:
        tensors = load_file(str(path))
        model.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("extra.")})
        extras = {k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")}
        if extra is not None and extras:
            extra.load_state_dict(extras)
        return model
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if extra is not None:
        tensors.update({f"extra.{k}": v.detach().contiguous().cpu() for k, v in extra.state_dict().items()})
    save_file(tensors, str(path))
    return path


def run_arm(name, args, base, patch, device, teacher, prior):
    torch.manual_seed(args.seed)  # same init stream and batch stream for every arm
    model = build_arm(name, args, base, patch).to(device)
    reco = sd = None
    ramp = args.kd_warmup if args.kd_warmup is not None else max(1, min(200, args.steps // 5))
    if name == "reco":
        reco = ReCoKD(feature_widths(model, patch, device), feature_widths(teacher, patch, device),
                      32, ReCoKDConfig(warmup_steps=ramp)).to(device)
    if name == "self":
        sd = SelfDistillation(feature_widths(model, patch, device), 32,
                              SelfDistillConfig(warmup_steps=ramp)).to(device)
    start = 0
    if prior and (args.resume / f"{name}.safetensors").is_file():
        checkpoint_io(model, args.resume / f"{name}.safetensors", load=True, extra=reco or sd)
        start = prior.get("arms", {}).get(name, {}).get("steps", 0)
        log.info("%s: resumed at step %d", name, start)
    summary = train_student(
        model, batches(args, device, patch, start), seg_loss(args),
        LoopOptions(steps=args.steps, lr=args.lr, max_seconds=args.max_seconds_per_arm,
                    log_every=max(1, min(100, args.steps // 10))),
        teacher=teacher if reco else None, reco=reco, self_distill=sd, start_step=start)
    summary.pop("optimizer")
    checkpoint_io(model, args.out / f"{name}.safetensors", extra=reco or sd)
    return model, summary


def evaluate_arm(model, image, truth, args, patch, device):
    t0 = time.perf_counter()
    pred = segment(model, image, args.step, patch, device)
    dice = dice_table(pred, truth)
    return {"dice": dice, "mean_dice": float(np.nanmean(list(dice.values()))),
            "params": sum(p.numel() for p in model.parameters()),
            "latency_s": latency(model, image, args.step, patch, device) if not args.smoke
            else round(time.perf_counter() - t0, 2)}


def markdown(results):
    lines = [f"device: {results['device']}; {results['steps_per_arm']} steps per arm, batch {results.get('batch', 1)}, "
             f"patch {results['patch']}; fsaverage, patch step {results['step']}; "
             f"loss {results.get('seg_loss')}; latency "
             f"{results.get('latency', 'measured by each arm right after its training')}", "",
             "| arm | params | train steps | train s | mean Dice (28) | latency / scan s |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in results["arms"].items():
        lines.append(f"| {name} | {r['params']:,} | {r['steps']} | {r['train_s']:.0f} | "
                     f"{r['mean_dice']:.3f} | {r['latency_s']:.2f} |")
    names = list(next(iter(results["arms"].values()))["dice"])
    lines += ["", "| structure | " + " | ".join(results["arms"]) + " |",
              "| --- |" + " ---: |" * len(results["arms"])]
    for s in names:
        lines.append(f"| {s} | " + " | ".join(f"{r['dice'][s]:.3f}" for r in results["arms"].values()) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.merge:
        print(markdown(merge(args.merge, args.out)))
        return 0
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    if args.smoke:
        args.steps, args.step = min(args.steps, 2), 32
    if args.retime:
        print(markdown(retime(args, device)))
        return 0
    if args.export_arms:
        export_arms(args)
        return 0
    patch = 32 if args.smoke else 96
    base = SMOKE_TEACHER if args.smoke else GPU_TEACHER
    args.out.mkdir(parents=True, exist_ok=True)
    prior = json.loads((args.resume / "results.json").read_text()) if args.resume else None
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    image, truth = load_fsaverage(args, device)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    bad = [a for a in arms if a not in ARMS]
    if bad:
        raise SystemExit(f"--arms: expected names among {ARMS}, got {bad}")
    results = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
               "steps_per_arm": args.steps, "batch": args.batch, "patch": patch, "step": args.step,
               "teacher_config": {k: list(v) if isinstance(v, tuple) else v for k, v in base.items()},
               "arms": {}}
    teacher = None
    if args.teacher:
        from medsegmamba.models.checkpoint import load_checkpoint
        teacher, cfg, _ = load_checkpoint(args.teacher, device=device)
        base = dict(channels=cfg.channels, num_blocks=cfg.num_blocks, d_state=cfg.d_state)
        patch = cfg.patch_size  # students learn from its features: same patch, also in --smoke
        results["patch"] = patch
    for name in arms:
        if name == "teacher" and teacher is not None:
            summary = {"steps": 0, "last_step": 0, "seconds": 0.0, "history": []}
            model = teacher
        else:
            if name == "reco" and teacher is None:
                raise SystemExit("--arms: 'reco' needs the teacher arm first or --teacher CKPT")
            model, summary = run_arm(name, args, base, patch, device, teacher, prior)
            if name == "teacher":
                teacher = model
        r = evaluate_arm(model, image, truth, args, patch, device)
        r.update(steps=summary["last_step"], train_s=summary["seconds"],
                 stopped_early=summary.get("stopped_early", False), history=summary["history"])
        results["arms"][name] = r
        (args.out / "results.json").write_text(json.dumps(results, indent=1))  # after every arm
        log.info("%s: mean Dice %.3f, %d params", name, r["mean_dice"], r["params"])
        if name != "teacher":
            del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    results["seg_loss"] = SEG_LOSS["name"]
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    table = markdown(results)
    (args.out / "results.md").write_text(table)
    print("\n\n".join(table.split("\n\n")[:2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
