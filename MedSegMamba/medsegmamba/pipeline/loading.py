"""Turn `--model NAME|PATH` into a network on a device; every failure becomes a `ModelError`."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field

from ..errors import ModelError

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A network in eval mode and what is known about its weights (registry entry / checkpoint metadata)."""

    network: object
    name: str
    metadata: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int | None:
        return getattr(self.network, "num_classes", None)

    @property
    def voxel_mm(self) -> int:
        """mm per voxel of the images the network learnt from: 1, or 3 for the coarse locator
        (its training config's `synth.voxel_mm`, kept in the weights' metadata)."""
        config = self.metadata.get("train_config") or {}
        if isinstance(config, str):
            try:
                config = json.loads(config)
            except ValueError:
                config = {}
        voxel = (config.get("synth") or {}).get("voxel_mm", 1) if isinstance(config, dict) else 1
        if not isinstance(voxel, int) or isinstance(voxel, bool) or not 1 <= voxel <= 8:
            raise ModelError(f"the weights say they learnt from {voxel!r} mm voxels; expected 1-8", self.name)
        return voxel


def resolve_device(device: str = "auto"):
    """'auto' -> cuda if available else cpu; checks that a requested CUDA device exists."""
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError):
        raise ModelError(f"unknown device {device!r}; expected auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelError(f"device {device!r} requested but CUDA is not available; use --device cpu")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ModelError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s)")
    return resolved


def load_model(spec, device) -> LoadedModel:
    """`spec`: an nn.Module (used as is), a checkpoint path (.safetensors) or a shipped weights name."""
    import torch

    if isinstance(spec, torch.nn.Module):
        return LoadedModel(spec.to(device).eval(), type(spec).__name__, {})
    spec = os.fspath(spec)
    looks_like_path = os.sep in spec or spec.endswith(".safetensors") or os.path.exists(spec)
    if looks_like_path and not os.path.isfile(spec):
        raise ModelError("no such weights file", spec)
    try:
        from ..weights import load_pretrained
    except ImportError:
        load_pretrained = None
    try:
        if load_pretrained is not None:
            loaded = load_pretrained(spec, device)
        elif looks_like_path:
            from ..models.checkpoint import load_checkpoint

            loaded = load_checkpoint(spec, device)
        else:
            raise ModelError(f"no weights named {spec!r}: no weights are shipped yet "
                             "(pass a .safetensors checkpoint with --model PATH)")
    except ModelError:
        raise
    except Exception as error:  # the weights module's own errors, a corrupt file, a wrong config
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"cannot load the model: {message}", spec if looks_like_path else None) from None
    network, metadata = _unpack(loaded)
    if torch.device(device).type == "cuda" and hasattr(network, "set_fused_groupnorm"):
        # Same numbers as nn.GroupNorm (tested); 25-35 % faster per patch on an H100
        # (benchmarks/results/2026-11-23-h100/model.md).
        network.set_fused_groupnorm(True)
    return LoadedModel(network.to(device).eval(), spec, metadata)


def _unpack(loaded) -> tuple[object, dict]:
    """load_pretrained / load_checkpoint may give a module or (module, config, metadata)."""
    if isinstance(loaded, tuple):
        network = loaded[0]
        metadata = next((x for x in loaded[1:][::-1] if isinstance(x, dict)), {})
        return network, dict(metadata)
    return loaded, dict(getattr(loaded, "metadata", {}) or {})
