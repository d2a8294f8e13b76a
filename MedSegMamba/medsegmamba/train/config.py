"""Training configuration: one dataclass, read from a JSON file, overridden by CLI flags."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..fields import from_known_fields
from .schedule import lr_at
from .synth import SynthConfig

# The default model: the paper's layout at 1/4 width with a 128-wide bottleneck (2.2 M
# parameters), so that a scan segments on a laptop CPU and the resumable checkpoint stays small.
DEFAULT_MODEL = {"arch": "medsegmamba", "channels": [1, 8, 16, 32, 64, 128], "num_blocks": 9,
                 "d_state": 16, "num_classes": 32, "expand": 1, "dropout": 0.1, "drop_path": 0.3,
                 "patch_size": 96}


@dataclass
class TrainConfig:
    model: dict = field(default_factory=lambda: dict(DEFAULT_MODEL))
    data: str = ".data/label_maps"      # label maps (synthetic mode)
    max_maps: int = 0                    # use only the first N maps (0 = all)
    images: str = ""                     # real-pair mode: image folder (labels in `data`)
    fsaverage: str = ""                  # folder with orig + aseg for validation at `val_step`
    out: str = "runs/train"
    resume: str = ""                     # checkpoint to resume from ("" = none)
    seed: int = 0
    batch_size: int = 2
    accum: int = 1
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    t0: int = 2000                       # cosine period (iterations), warm restarts after
    t_mult: float = 2.0
    ce_until: int = 1500                 # Dice + weighted CE before, Dice alone from here
    max_iters: int = 100000              # last iteration; the cosine cycle is cut to end here
    restart_at: int = 0                  # > 0: one fresh cycle (warm-up, cosine) from here to max_iters
    max_minutes: float = 0.0             # 0 = no limit
    grad_clip: float = 1.0
    log_every: int = 20
    val_every: int = 500
    val_samples: int = 8
    val_step: int = 32
    ckpt_every: int = 500
    choroid: str = "plexus"
    csf: str = "cistern"                 # label 24: "cistern" (split, see labelmaps), "aseg", "background"
    seed_classes: list = field(default_factory=list)  # ["24=14"]: once, after resuming (state.seed_class)
    bf16: bool = True                    # autocast on CUDA only
    compile: bool = False                # torch.compile the training step (forward + loss + backward)
    channels_last: bool = False          # model and heads in channels_last_3d memory
    self_distill: float = 0.0            # > 0: multi-scale self-distillation, its terms x this
    synth: dict = field(default_factory=dict)

    def check(self) -> None:
        """Checks between settings, once the file and the flags are both in (ValueError)."""
        self.synth_config()  # the generator's own checks, e.g. after --synth
        if self.restart_at < 0:
            raise ValueError(f"restart_at: expected an iteration >= 0, got {self.restart_at}")
        if self.restart_at:  # the schedule's own check, at the restart, before any data is read
            lr_at(self.restart_at, self.lr, self.warmup, self.t0, self.t_mult, end=self.max_iters,
                  restart_at=self.restart_at)

    def synth_config(self) -> SynthConfig:
        return SynthConfig.from_dict(self.synth)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        cfg = from_known_fields(cls, d, "training config", noun="keys")
        cfg.synth_config()  # fail early on unknown synth fields
        return cfg

    @classmethod
    def from_file(cls, path) -> "TrainConfig":
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as e:
            raise ValueError(f"{path}: cannot read the training config ({e.strerror or e})") from None
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
        except (TypeError, ValueError) as e:  # unknown keys, a value of the wrong kind
            raise ValueError(f"{path}: {e}") from None
