"""Architecture configs (a frozen dataclass, apart from weights) and named presets."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from torch import nn

from ..fields import from_known_fields
from .students import PRESETS as STUDENTS

ARCHS = ("medsegmamba", "segmambabot", "tabsurfer", "kan-mamba")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build a network; weights and their metadata live elsewhere."""

    arch: str = "medsegmamba"
    channels: tuple = (1, 32, 64, 128, 256, 1024)
    num_blocks: int = 9
    d_state: int = 64
    num_classes: int = 32
    expand: int = 1
    dropout: float = 0.0
    drop_path: float = 0.0
    patch_size: int = 96
    num_heads: int = 16

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ValueError(f"arch: expected one of {ARCHS}, got {self.arch!r}")
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))

    def replace(self, **changes) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["channels"] = list(self.channels)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return from_known_fields(cls, d, "ModelConfig")

    @classmethod
    def from_json(cls, s: str) -> "ModelConfig":
        return cls.from_dict(json.loads(s))


_PAPER = ModelConfig()
_SMALL = ModelConfig(channels=(1, 8, 16, 32, 64, 256), num_blocks=9, d_state=16)
PRESETS: dict[str, ModelConfig] = {
    "paper": _PAPER,
    "paper-hsf": _PAPER.replace(num_classes=25),
    "paper-train": _PAPER.replace(dropout=0.1, drop_path=0.3),
    "small": _SMALL,
    "small-hsf": _SMALL.replace(num_classes=25),
    "segmambabot": _PAPER.replace(arch="segmambabot"),
    "tabsurfer": _PAPER.replace(arch="tabsurfer", num_blocks=8, d_state=1, num_heads=16),
    "kan-mamba": _PAPER.replace(arch="kan-mamba"),
    # ReCo-KD students of the paper network: widths scaled by 2^-t (models/students.py).
    **{name: _PAPER.replace(channels=spec.channels, d_state=spec.d_state)
       for name, spec in STUDENTS.items()},
}


def get_config(name_or_config) -> ModelConfig:
    if isinstance(name_or_config, ModelConfig):
        return name_or_config
    if isinstance(name_or_config, dict):
        return ModelConfig.from_dict(name_or_config)
    if name_or_config in PRESETS:
        return PRESETS[name_or_config]
    raise ValueError(f"model: expected a ModelConfig, a dict or one of {sorted(PRESETS)}, "
                     f"got {name_or_config!r}")


def build_model(config_or_name, **overrides) -> nn.Module:
    """Build the network of a config or preset name; ``overrides`` replace config fields,
    except ``scan_impl`` which is passed to the model (not part of the architecture)."""
    from .baselines import BASELINES
    from .medsegmamba import MedSegMamba

    scan_impl = overrides.pop("scan_impl", None)
    cfg = get_config(config_or_name)
    if overrides:
        cfg = cfg.replace(**overrides)
    kwargs = dict(channels=cfg.channels, num_blocks=cfg.num_blocks, d_state=cfg.d_state,
                  num_classes=cfg.num_classes, expand=cfg.expand, dropout=cfg.dropout,
                  drop_path=cfg.drop_path, patch_size=cfg.patch_size, scan_impl=scan_impl)
    if cfg.arch == "medsegmamba":
        return MedSegMamba(**kwargs)
    if cfg.arch == "kan-mamba":
        return MedSegMamba(bottleneck="kan-mamba", **kwargs)
    if cfg.arch == "tabsurfer":
        kwargs["num_heads"] = cfg.num_heads
    return BASELINES[cfg.arch](**kwargs)
