"""`medsegmamba train`: train a segmentation model from label maps (SynthSeg-style images).

No torch at import time: the CLI's --help stays instant.
"""

from __future__ import annotations

import json
import logging
import sys

log = logging.getLogger(__name__)

# flag -> (TrainConfig field, type, help)
_FLAGS = {
    "--data": ("data", str, "folder of label maps (synthetic mode) [.data/label_maps]"),
    "--images": ("images", str, "real-pair mode: folder of conformed images matching --data"),
    "--fsaverage": ("fsaverage", str, "folder with orig + aseg: real-scan validation"),
    "--out": ("out", str, "output folder: log.jsonl, checkpoints, weights, summary.json"),
    "--resume": ("resume", str, "training checkpoint to resume from (ignored if missing)"),
    "--max-maps": ("max_maps", int, "use only the first N label maps (0 = all)"),
    "--seed": ("seed", int, "random seed"),
    "--batch-size": ("batch_size", int, "patches per forward pass"),
    "--accum": ("accum", int, "gradient accumulation steps per iteration"),
    "--lr": ("lr", float, "peak learning rate (AdamW)"),
    "--warmup": ("warmup", int, "warm-up iterations"),
    "--t0": ("t0", int, "first cosine period (iterations)"),
    "--ce-until": ("ce_until", int, "iteration from which the loss is Dice alone"),
    "--max-iters": ("max_iters", int, "stop at this iteration"),
    "--restart-at": ("restart_at", int, "start one fresh learning-rate cycle (warm-up, then cosine "
                                        "to --max-iters) at this iteration: fine-tuning a trained "
                                        "model on a changed target"),
    "--max-minutes": ("max_minutes", float, "stop cleanly (with a checkpoint) after this long"),
    "--val-every": ("val_every", int, "validate every N iterations"),
    "--ckpt-every": ("ckpt_every", int, "checkpoint every N iterations"),
    "--log-every": ("log_every", int, "log every N iterations"),
    "--choroid": ("choroid", str, "136/137/163/164 as 'plexus' (31/63) or 'ventricle'"),
    "--self-distill": ("self_distill", float, "multi-scale self-distillation (MSD-KMamba): aux heads at "
                                              "decoder scales learn from the finest output; weight of its "
                                              "terms (0 = off; 1 = the distill command's weights)"),
    "--csf": ("csf", str, "label 24 as 'cistern' (only near the thalami: SynthSeg-style maps), "
                          "'aseg' (all of it: real FreeSurfer asegs) or 'background'"),
}


def add_arguments(parser) -> None:
    parser.add_argument("--config", help="JSON training config (configs/default.json)")
    for flag, (_, typ, text) in _FLAGS.items():
        parser.add_argument(flag, type=typ, default=None, help=text)
    parser.add_argument("--model", help="JSON object of ModelConfig fields, or a preset name")
    parser.add_argument("--synth", help="JSON object of generator fields over the config's \"synth\", "
                                        "e.g. '{\"ilv_erode_prob\": 0.4}': an experiment without a new config file")
    parser.add_argument("--patch", type=int, default=None, help="patch size (model and generator)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1")
    parser.add_argument("--no-bf16", action="store_true", help="no bf16 autocast on CUDA")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the training step: the paper network's step on an H100, 62 -> 47 ms a "
                             "patch at batch 2 (benchmarks/results/2026-12-07-h100-s19/); the first steps compile")
    parser.add_argument("--channels-last", action="store_true",
                        help="the model in channels_last_3d memory: the paper network's eager step on an "
                             "H100, 50.7 -> 48.9 ms a patch at batch 8 (benchmarks/results/2026-12-07-h100-s25/)")
    parser.add_argument("--export", action="store_true", help="write fp32/fp16 weights at the end")
    parser.add_argument("--seed-class", action="append", default=None, metavar="TARGET=SOURCE",
                        help="after resuming, start class TARGET's last-layer row as a copy of SOURCE's "
                             "(FreeSurfer labels, e.g. 24=14), for a class the network gives ~0; once, "
                             "for one run (repeatable)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny model, 32^3 patches, a few iterations, on CPU: checks the wiring")


def build_config(args):
    from .config import TrainConfig

    cfg = TrainConfig.from_file(args.config) if args.config else TrainConfig()
    for flag, (name, _, _) in _FLAGS.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            setattr(cfg, name, value)
    if args.model:
        from ..models.registry import get_config

        spec = json.loads(args.model) if args.model.strip().startswith("{") else args.model
        cfg.model = spec if isinstance(spec, dict) and "channels" in spec and "arch" in spec else {
            **get_config(spec).to_dict()} if not isinstance(spec, dict) else {**cfg.model, **spec}
    if args.synth:
        try:
            spec = json.loads(args.synth)
        except json.JSONDecodeError as e:
            raise ValueError(f"--synth: not valid JSON ({e})") from None
        if not isinstance(spec, dict):
            raise ValueError(f"--synth: expected a JSON object of generator fields, got {args.synth!r}")
        cfg.synth = {**cfg.synth, **spec}
    if args.smoke:
        cfg.model = {**cfg.model, "channels": [1, 8, 16, 32, 64, 32], "num_blocks": 2, "d_state": 4}
        cfg.synth = {**cfg.synth, "coords_per_map": 2000}
        args.patch = args.patch or 32
        if args.max_iters is None:
            cfg.max_iters = 6
        cfg.val_every, cfg.ckpt_every, cfg.log_every = 3, 3, 1
        cfg.val_samples, cfg.warmup, cfg.max_maps = 2, 2, cfg.max_maps or 3
    if args.patch:
        cfg.model = {**cfg.model, "patch_size": args.patch}
        cfg.synth = {**cfg.synth, "patch": args.patch}
    if args.no_bf16:
        cfg.bf16 = False
    if args.compile:
        cfg.compile = True
    if args.channels_last:
        cfg.channels_last = True
    if args.seed_class:
        from .state import parse_seed_classes

        cfg.seed_classes = list(args.seed_class)
        parse_seed_classes(cfg.seed_classes)  # a bad pair fails before any data is read
    cfg.check()  # e.g. --restart-at with a --max-iters inside its warm-up: before any data is read
    return cfg


def run(args) -> int:
    from .loop import Trainer

    from ..errors import ConfigError

    try:
        cfg = build_config(args)
    except ValueError as error:  # the config's own checks: one line for the user, no traceback
        raise ConfigError(str(error)) from None
    trainer = Trainer(cfg, device="cpu" if args.smoke and args.device == "auto" else args.device)
    result = trainer.run()
    if trainer.ranks.main:
        if args.export:
            result["export"] = trainer.export(cfg.out)
        from pathlib import Path

        Path(cfg.out, "summary.json").write_text(json.dumps(result, indent=1))
        val = result.get("final_val", {})
        log.info("trained to iteration %d (%d this run) in %.1f min; synthetic Dice %s; "
                 "fsaverage Dice %s", result["iterations"], result["iterations_this_run"],
                 result["minutes"], val.get("synth_dice"), val.get("fsaverage_dice"))
    return 0


def main(argv=None) -> int:
    import argparse

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="medsegmamba train", description=__doc__)
    add_arguments(parser)
    from ..errors import MedSegMambaError

    try:
        return run(parser.parse_args(argv))
    except MedSegMambaError as error:  # `torchrun -m ...` users get the CLI's one line too
        print(f"medsegmamba train: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
