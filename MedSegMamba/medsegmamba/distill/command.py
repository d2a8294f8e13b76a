"""``medsegmamba distill``: train a compact student from a trained teacher (ReCo-KD), optionally
with multi-scale self-distillation. torch is imported only inside :func:`run` (instant --help)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--teacher", required=True, help="teacher checkpoint (.safetensors)")
    parser.add_argument("--student", default="student-t1",
                        help="student-t1 | student-t2 | student-t3: widths 2^-t of the teacher's")
    parser.add_argument("-o", "--output", required=True, help="student checkpoint to write")
    parser.add_argument("--label-maps", required=True, help="folder of SynthSeg training label maps")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--device", default=None, help="cuda | cpu (default: cuda when available)")
    parser.add_argument("--seed", type=int, default=0)
    g = parser.add_argument_group("ReCo-KD (weights 0 switch a term off)")
    g.add_argument("--w-sard", type=float, default=1.0, help="MS-SARD region feature distillation")
    g.add_argument("--w-ca", type=float, default=1.0, help="MS-CA affinity alignment")
    g.add_argument("--w-kd", type=float, default=0.5, help="softened-logit KD")
    g.add_argument("--temperature", type=float, default=2.0)
    g.add_argument("--kd-warmup", type=int, default=100, help="steps of linear warm-up of KD terms")
    g.add_argument("--no-reco", action="store_true", help="train the student without the teacher")
    g = parser.add_argument_group("multi-scale self-distillation")
    g.add_argument("--self-distill", action="store_true", help="add aux decoder heads (MSD)")
    g.add_argument("--w-aux-seg", type=float, default=0.3)
    g.add_argument("--w-self-kd", type=float, default=0.3)
    g.add_argument("--w-hint", type=float, default=0.1)
    g.add_argument("--sd-warmup", type=int, default=200)


def reco_config(args):
    from .reco_kd import ReCoKDConfig

    return ReCoKDConfig(w_sard=args.w_sard, w_ca=args.w_ca, w_kd=args.w_kd,
                        temperature=args.temperature, warmup_steps=args.kd_warmup)


def self_distill_config(args):
    from .self_distill import SelfDistillConfig

    return SelfDistillConfig(w_aux_seg=args.w_aux_seg, w_self_kd=args.w_self_kd,
                             w_hint=args.w_hint, temperature=args.temperature,
                             warmup_steps=args.sd_warmup)


def run(args) -> int:
    import torch

    from ..models.checkpoint import load_checkpoint, save_checkpoint
    from ..models.students import resolve_student
    from .loop import LoopOptions, train_student
    from .recipe import make_generator, segmentation_loss, synth_batches
    from .reco_kd import ReCoKD, feature_widths
    from .self_distill import SelfDistillation

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(args.seed)
    teacher, t_cfg, _ = load_checkpoint(args.teacher, device=device)
    spec = resolve_student(args.student, t_cfg.channels, t_cfg.d_state, t_cfg.num_blocks)
    s_cfg = t_cfg.replace(channels=spec.channels, d_state=spec.d_state)
    from ..models import build_model

    student = build_model(s_cfg).to(device)
    widths = feature_widths(student, s_cfg.patch_size, device)
    reco = None if args.no_reco else ReCoKD(
        widths, feature_widths(teacher, t_cfg.patch_size, device), s_cfg.num_classes,
        reco_config(args)).to(device)
    sd = SelfDistillation(widths, s_cfg.num_classes, self_distill_config(args)).to(device) \
        if args.self_distill else None
    batches = synth_batches(make_generator(args.label_maps, device, s_cfg.patch_size, args.seed),
                            args.batch_size)
    summary = train_student(student, batches, segmentation_loss(),
                            LoopOptions(steps=args.steps, lr=args.lr),
                            teacher=teacher if reco else None, reco=reco, self_distill=sd)
    summary.pop("optimizer")
    provenance = {"teacher": Path(args.teacher).name, "student": spec.name,
                  "reco_kd": None if reco is None else vars(reco.config),
                  "self_distill": None if sd is None else vars(sd.config),
                  "steps": summary["last_step"], "label_maps": str(args.label_maps)}
    out = save_checkpoint(student, s_cfg, args.output,
                          metadata={"provenance": json.dumps(provenance, default=str)})
    log.info("student %s (%d parameters) written to %s", spec.name,
             sum(p.numel() for p in student.parameters()), out)
    return 0


__all__ = ["add_arguments", "run"]
