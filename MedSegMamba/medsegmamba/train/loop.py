"""The training loop: generator -> model -> Dice (+ weighted CE) -> AdamW, with exact resume.

Reads top to bottom: set up (device, ranks, data, model, optimizer) -> maybe resume -> iterate
(lr from the iteration, accumulate, step, log, validate, checkpoint) -> stop on max_iters or the
time limit -> final checkpoint, weights, summary. Several GPUs: launch with torchrun; each rank
draws from its own generator seed and gradients are averaged by DistributedDataParallel.
"""

from __future__ import annotations

import json
import logging
import os
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from .config import TrainConfig
from .data import load_eval_pair, load_images, load_label_maps
from .labelmaps import LabelTable, present_values
from .losses import class_weights, segmentation_loss
from .schedule import lr_at
from .state import load_training_state, parse_seed_classes, save_training_state, seed_class
from .synth import PairGenerator, SynthGenerator
from .validate import dice_per_class, evaluate_scan, predict_patches

log = logging.getLogger(__name__)


class _Ranks:
    """torchrun environment (RANK, WORLD_SIZE, LOCAL_RANK) or a single process."""

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local = int(os.environ.get("LOCAL_RANK", "0"))
        if self.world > 1:
            torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def any(self, flag: bool, device) -> bool:
        """True on every rank if `flag` is true on one (so all ranks stop at the same step)."""
        if self.world == 1:
            return flag
        t = torch.tensor([float(flag)], device=device)
        torch.distributed.all_reduce(t)
        return bool(t.item() > 0)

    def barrier(self):
        if self.world > 1:
            torch.distributed.barrier()

    def spread(self, t: torch.Tensor) -> float:
        """Largest difference of `t` between any rank and rank 0 (0.0 for one process)."""
        if self.world == 1:
            return 0.0
        copies = [torch.empty_like(t) for _ in range(self.world)]
        torch.distributed.all_gather(copies, t.contiguous())
        return max(float((c - copies[0]).abs().max()) for c in copies)


def _device(ranks: _Ranks, requested: str) -> torch.device:
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(requested)
    if dev.type == "cuda":
        dev = torch.device("cuda", ranks.local if ranks.world > 1 else (dev.index or 0))
        torch.cuda.set_device(dev)
    return dev


class _TrainPath(torch.nn.Module):
    """The training forward, so that DistributedDataParallel wraps all of it: the model's logits,
    and with self-distillation its auxiliary heads' loss too (their gradients are averaged with
    the model's)."""

    def __init__(self, model, self_distill=None):
        super().__init__()
        self.model, self.self_distill = model, self_distill

    def forward(self, x, target=None, step: int = 0):
        if self.self_distill is None:
            return self.model.forward_logits(x), None, {}
        logits, feats = self.model.forward_features(x)
        loss, terms = self.self_distill(logits, feats, target, step)
        return logits, loss, terms


class Trainer:
    def __init__(self, cfg: TrainConfig, device: str = "auto"):
        from ..models import build_model
        from ..models.registry import ModelConfig

        self.t_start = time.time()  # --max-minutes counts set-up too: the command has a wall limit
        self.cfg, self.ranks = cfg, _Ranks()
        self.device = _device(self.ranks, device)
        self.autocast = cfg.bf16 and self.device.type == "cuda"
        self.out = Path(cfg.out)
        torch.manual_seed(cfg.seed)  # same initial weights on every rank

        maps = load_label_maps(cfg.data, cfg.max_maps)
        values = set().union(*(present_values(m).tolist() for m in maps))
        self.table = LabelTable(values, cfg.choroid, cfg.csf)
        seed = cfg.seed + 1000 * self.ranks.rank
        if cfg.images:  # real-pair mode: images matched to the label maps by sorted file name
            images = load_images(cfg.images, cfg.max_maps)
            self.gen = PairGenerator(images, maps, self.table, cfg.synth_config(), self.device, seed)
        else:
            self.gen = SynthGenerator(maps, self.table, cfg.synth_config(), self.device, seed)
        self.trained = sorted(set(self.table.target.tolist()) - {0})
        counts = sum(torch.bincount(self.gen.target_lut[m.flatten().long()], minlength=32)[:32]
                     for m in self.gen.maps)
        self.weights = class_weights(counts.cpu()).to(self.device)
        del maps

        self.model_config = ModelConfig.from_dict(cfg.model)
        self.model = build_model(self.model_config).to(self.device)
        if self.autocast and hasattr(self.model, "set_fused_groupnorm"):
            self.model.set_fused_groupnorm(True)  # fp32 statistics, faster under bf16
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.self_distill = self._self_distill() if cfg.self_distill > 0 else None
        if cfg.channels_last:
            # cuDNN's 3D convolutions work in channels-last order: without it each one transposes its
            # input and output (benchmarks/results/2026-12-07-h100-s25/). cuDNN answers in its weights'
            # layout, so the activations follow; a one-channel patch is the same array in either order
            self.model.to(memory_format=torch.channels_last_3d)
            if self.self_distill is not None:
                self.self_distill.to(memory_format=torch.channels_last_3d)
        self.net = _TrainPath(self.model, self.self_distill)
        if self.ranks.world > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.net, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if cfg.compile:
            # the model's own forward stays eager (validation, export); the training path is
            # compiled, DDP's buckets included. The scan's Gluon kernels are custom ops, which the
            # compiled graph calls as they are
            self.net = torch.compile(self.net)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        # the heads are training-only and are not kept in checkpoints: their own optimizer, so that
        # a checkpoint resumes with or without them; a resumed run starts them afresh
        self.sd_opt = (torch.optim.AdamW(self.self_distill.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
                       if self.self_distill is not None else None)
        self.iteration = 0
        if cfg.resume and Path(cfg.resume).exists():
            self._resume(Path(cfg.resume))
        self.sd_start = self.iteration  # the self-distillation terms ramp up from here
        for target, source in parse_seed_classes(cfg.seed_classes):
            seed_class(self.model, target, source)
            log.info("class %d seeded from class %d at iteration %d", target, source, self.iteration)
        self.val_images, self.val_targets = self._fixed_val_set()
        self.eval_pair = load_eval_pair(cfg.fsaverage) if cfg.fsaverage and self.ranks.main else None
        self.out.mkdir(parents=True, exist_ok=True)  # only once data and checkpoint have loaded
        self.logf = open(self.out / "log.jsonl", "a") if self.ranks.main else None
        n = sum(p.numel() for p in self.model.parameters())
        log.info("model %s: %.2f M parameters on %s (bf16 autocast: %s), %d rank(s)",
                 self.model_config.channels, n / 1e6, self.device, self.autocast, self.ranks.world)
        self.num_params = n

    # --- state ------------------------------------------------------------------------------
    def _rng(self) -> dict:
        rng = {"synth": self.gen.get_state(), "torch_cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return rng

    def _self_distill(self):
        """MSD-KMamba's heads at dec4/dec3, with the distill command's weights x cfg.self_distill."""
        from ..distill.reco_kd import feature_widths
        from ..distill.self_distill import SelfDistillConfig, SelfDistillation

        w, base = self.cfg.self_distill, SelfDistillConfig()
        config = SelfDistillConfig(w_aux_seg=w * base.w_aux_seg, w_self_kd=w * base.w_self_kd,
                                   w_hint=w * base.w_hint)
        torch.manual_seed(self.cfg.seed + 1)  # same heads on every rank
        widths = feature_widths(self.model, self.model_config.patch_size, self.device)
        return SelfDistillation(widths, 32, config).to(self.device)

    def _resume(self, path: Path):
        st = load_training_state(path, self.model, self.opt, self.device)
        self.iteration = st["iteration"]
        rng = st["rng"]
        same_kind = rng["synth"].numel() == self.gen.get_state().numel()
        if self.ranks.world == 1 and same_kind:
            self.gen.set_state(rng["synth"])
            torch.set_rng_state(rng["torch_cpu"])
            if "cuda" in rng and self.device.type == "cuda":
                torch.cuda.set_rng_state(rng["cuda"], self.device)
        else:
            # one saved stream cannot serve several ranks, and a CUDA generator's state does not fit
            # a CPU one (nor the reverse): re-seed from (seed, rank, iteration); not an exact resume
            if not same_kind:
                log.warning("%s was saved on another kind of device: the generator is re-seeded, so "
                            "this run does not repeat the one it continues exactly", path)
            self.gen.gen.manual_seed(self.cfg.seed + 1000 * self.ranks.rank + 7919 * self.iteration)
        log.info("resumed from %s at iteration %d", path, self.iteration)

    def save(self, path=None) -> list[Path]:
        if not self.ranks.main:
            return []
        path = Path(path or self.out / "last.safetensors")
        return save_training_state(path, self.model, self.opt, self.iteration, self.model_config,
                                   self.cfg.to_dict(), self._rng(),
                                   extra={"device": str(self.device)})

    def _fixed_val_set(self):
        """Validation patches from a fixed seed, without disturbing the training stream."""
        if self.cfg.val_samples <= 0:
            return None, None
        state = self.gen.get_state()
        self.gen.gen.manual_seed(987654321)
        imgs, tgts = zip(*(self.gen.sample(1) for _ in range(self.cfg.val_samples)))
        self.gen.set_state(state)
        return torch.cat(imgs), torch.cat(tgts)

    # --- steps ------------------------------------------------------------------------------
    def step(self) -> dict:
        cfg, it = self.cfg, self.iteration
        lr = lr_at(it, cfg.lr, cfg.warmup, cfg.t0, cfg.t_mult, end=cfg.max_iters,
                   restart_at=cfg.restart_at)
        for g in self.opt.param_groups:
            g["lr"] = lr
        self.net.train()
        self.opt.zero_grad(set_to_none=True)
        if self.sd_opt is not None:
            for g in self.sd_opt.param_groups:
                g["lr"] = lr
            self.sd_opt.zero_grad(set_to_none=True)
        use_ce = it < cfg.ce_until
        totals = {"loss": 0.0, "dice": 0.0, "ce": 0.0, "self_distill": 0.0}
        t_gen = 0.0
        for a in range(cfg.accum):
            t0 = time.perf_counter()
            with torch.no_grad():
                img, tgt = self.gen.sample(cfg.batch_size)
            t_gen += time.perf_counter() - t0
            sync = self.net.no_sync if (self.ranks.world > 1 and a < cfg.accum - 1) else nullcontext
            with sync():
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                    logits, sd_loss, _ = self.net(img, tgt, it - self.sd_start)
                loss, parts = segmentation_loss(logits, tgt, self.weights, use_ce)
                if sd_loss is not None:
                    loss = loss + sd_loss
                    parts = {**parts, "self_distill": sd_loss}
                (loss / cfg.accum).backward()
            totals["loss"] += loss.item() / cfg.accum
            for k, v in parts.items():
                totals[k] += v.item() / cfg.accum
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.opt.step()
        if self.sd_opt is not None:
            self.sd_opt.step()
        self.iteration += 1
        return {"lr": lr, "ce_on": use_ce, "gen_s": t_gen, **totals}

    @torch.no_grad()
    def validate(self) -> dict:
        self.model.eval()
        rec: dict = {"kind": "val", "it": self.iteration}
        if self.val_images is not None:
            pred = predict_patches(self.model, self.val_images, autocast=self.autocast)
            d = dice_per_class(pred.cpu().numpy(), self.val_targets.cpu().numpy(), 32)
            rec["synth_dice"] = float(np.nanmean([d[c] for c in self.trained]))
        if self.eval_pair is not None:
            t0 = time.perf_counter()
            r = evaluate_scan(self.model, *self.eval_pair, 32, self.trained, step=min(self.cfg.val_step, self.model_config.patch_size),
                              patch=self.model_config.patch_size, device=self.device, autocast=self.autocast,
                              voxel=int(self.gen.cfg.voxel_mm))
            rec.update(fsaverage_dice=r["mean_dice"], fsaverage_per_class=r["dice"],
                       fsaverage_s=time.perf_counter() - t0)
        return rec

    def write(self, rec: dict):
        if self.logf:
            self.logf.write(json.dumps(rec) + "\n")
            self.logf.flush()

    # --- the loop ---------------------------------------------------------------------------
    def run(self) -> dict:
        cfg = self.cfg
        start, start_it = self.t_start, self.iteration
        limit = cfg.max_minutes * 60 if cfg.max_minutes > 0 else float("inf")
        margin, window, t_win = 45.0, [], time.perf_counter()
        last_val: dict = {}
        while self.iteration < cfg.max_iters:
            elapsed = time.time() - start
            if self.ranks.any(elapsed + margin > limit, self.device):
                log.info("time limit: stopping at iteration %d", self.iteration)
                break
            rec = self.step()
            window.append(rec)
            if self.iteration % cfg.log_every == 0 or self.iteration == cfg.max_iters:
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                dt = time.perf_counter() - t_win
                n = len(window)
                summary = {"kind": "train", "it": self.iteration, "lr": rec["lr"], "ce_on": rec["ce_on"],
                           **{k: float(np.mean([w[k] for w in window]))
                              for k in ("loss", "dice", "ce", "self_distill")},
                           "it_per_s": n / dt,
                           "patches_per_s": n * cfg.batch_size * cfg.accum * self.ranks.world / dt,
                           "gen_frac": sum(w["gen_s"] for w in window) / dt,
                           "elapsed_s": time.time() - start}
                self.write(summary)
                log.info("it %d loss %.4f dice %.4f ce %.4f lr %.2e %.2f it/s", self.iteration,
                         summary["loss"], summary["dice"], summary["ce"], rec["lr"], summary["it_per_s"])
                window, t_win = [], time.perf_counter()
            early = self.iteration == start_it + 50  # measures validation time for the margin
            if (self.iteration % cfg.val_every == 0 or early) and self.ranks.main:
                t0 = time.perf_counter()
                last_val = self.validate()
                self.write(last_val)
                margin = max(margin, 20.0 + 3 * (time.perf_counter() - t0))  # final val + fp16 check
                log.info("validation at %d: %s", self.iteration,
                         {k: v for k, v in last_val.items() if not isinstance(v, dict)})
            if self.iteration % cfg.ckpt_every == 0:
                self.save()
                self.ranks.barrier()
        self.save()
        self.ranks.barrier()
        # DistributedDataParallel keeps the replicas equal by construction; say so from the
        # weights themselves (per-tensor sums), so a broken set-up cannot pass unnoticed
        sums = torch.stack([p.detach().float().sum() for p in self.model.parameters()])
        spread = self.ranks.spread(sums)
        if spread:
            log.warning("the %d replicas' weights differ (largest per-tensor sum gap %.3g)", self.ranks.world, spread)
        final = self.validate() if self.ranks.main else {}
        self.write(final)
        result = {"iterations": self.iteration, "iterations_this_run": self.iteration - start_it,
                  "minutes": (time.time() - start) / 60, "params": self.num_params,
                  "device": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu",
                  "ranks": self.ranks.world, "replica_spread": spread, "final_val": final}
        if self.ranks.world > 1:
            # rank 0 validated alone: the others wait for it, so that no rank tears its side of
            # the group down (and exits) while a peer is still inside it
            self.ranks.barrier()
            torch.distributed.destroy_process_group()
        return result

    def export(self, out_dir) -> dict:
        """Shipping weights: fp32 and fp16 safetensors (models.checkpoint format), and the
        validation of the fp16-rounded weights, to check that fp16 costs no accuracy."""
        import copy

        from ..models.checkpoint import save_checkpoint

        out_dir = Path(out_dir)
        meta = {"iterations": self.iteration, "train_config": self.cfg.to_dict(),
                "trained_classes": self.trained}
        plain = self.model_config.replace(dropout=0.0, drop_path=0.0)
        f32 = save_checkpoint(self.model, plain, out_dir / "model_fp32.safetensors", meta)
        half = copy.deepcopy(self.model).half()
        f16 = save_checkpoint(half, plain, out_dir / "model_fp16.safetensors", meta)
        rounded = copy.deepcopy(self.model)
        with torch.no_grad():
            for p in rounded.parameters():
                p.copy_(p.half().float())
        keep, self.model = self.model, rounded
        try:
            val16 = self.validate()
        finally:
            self.model = keep
        return {"fp32": str(f32), "fp16": str(f16), "val_fp16_weights": val16}
