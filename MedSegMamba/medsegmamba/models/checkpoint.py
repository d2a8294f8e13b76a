"""Checkpoints: ours (safetensors + config JSON in the metadata) and the authors' ``.pt`` files.

The authors' state dicts already use our key names; :func:`authors_state_dict_to_ours` strips
wrapper prefixes, infers the config from the shapes and checks every key and shape against the
network that config builds. No pickle: ``torch.load(weights_only=True)`` only.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch

from .registry import ModelConfig, build_model

log = logging.getLogger(__name__)

FORMAT = "medsegmamba"
_WRAPPERS = ("model_state_dict", "state_dict", "model", "net", "module")
_PREFIXES = ("module.", "_orig_mod.", "model.")


def infer_config(state_dict: dict) -> ModelConfig:
    """The MedSegMamba config whose network has these shapes (authors' key names)."""
    def shape(key):
        if key not in state_dict:
            raise ValueError(f"state_dict: missing key {key!r}; not a MedSegMamba state dict")
        return tuple(state_dict[key].shape)

    c1, c0 = shape("Conv1.conv.0.weight")[:2]
    c2 = shape("downconv1.down.1.conv.0.weight")[0]
    c3 = shape("downconv2.down.1.conv.0.weight")[0]
    c4 = shape("downconv3.down.1.conv.0.weight")[0]
    e = shape("expand.weight")[0]
    blocks = {int(k.split(".")[2]) for k in state_dict if k.startswith("bottleneck.blocks.")}
    if not blocks or blocks != set(range(len(blocks))):
        raise ValueError(f"state_dict: bottleneck blocks must be numbered 0..n-1, got {sorted(blocks)}")
    pre = "bottleneck.blocks.0.self_attention."
    d_state = shape(pre + "A_logs")[1]
    expand = shape(pre + "in_proj.weight")[0] // e
    length = shape(pre + "scans.index_flat")[-1]
    size = round(length ** (1 / 3))
    return ModelConfig(arch="medsegmamba", channels=(c0, c1, c2, c3, c4, e), num_blocks=len(blocks),
                       d_state=d_state, num_classes=shape("Conv_1x1.weight")[0], expand=expand,
                       patch_size=8 * size)


def _strip_prefixes(state_dict: dict) -> dict:
    out = dict(state_dict)
    changed = True
    while changed and out:
        changed = False
        for p in _PREFIXES:
            if all(k.startswith(p) for k in out):
                out = {k[len(p):]: v for k, v in out.items()}
                changed = True
    return out


def authors_state_dict_to_ours(state_dict: dict) -> tuple[dict, ModelConfig]:
    """Pure remap: (our state dict, inferred config). Raises ValueError on any key/shape mismatch."""
    sd = _strip_prefixes(state_dict)
    config = infer_config(sd)
    with torch.device("meta"):
        expected = build_model(config).state_dict()
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    if missing or unexpected:
        raise ValueError(f"state_dict: keys do not match {config}: missing {missing[:8]}"
                         f"{'...' if len(missing) > 8 else ''}, unexpected {unexpected[:8]}"
                         f"{'...' if len(unexpected) > 8 else ''}")
    for k, want in expected.items():
        if tuple(sd[k].shape) != tuple(want.shape):
            raise ValueError(f"state_dict[{k!r}]: expected shape {tuple(want.shape)}, "
                             f"got {tuple(sd[k].shape)}")
    return {k: sd[k] for k in expected}, config


def _unwrap(obj, path) -> dict:
    for _ in range(3):
        if isinstance(obj, dict) and not any(torch.is_tensor(v) for v in obj.values()):
            inner = next((obj[w] for w in _WRAPPERS if isinstance(obj.get(w), dict)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, dict) or not any(torch.is_tensor(v) for v in obj.values()):
        raise ValueError(f"{path}: expected a state dict or a dict holding one under one of "
                         f"{_WRAPPERS}, got {type(obj).__name__}")
    return {k: v for k, v in obj.items() if torch.is_tensor(v)}


def load_authors_checkpoint(path, device="cpu"):
    """Load the authors' ``.pt`` (bare state dict or a common wrapper) -> (model, config)."""
    obj = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    sd, config = authors_state_dict_to_ours(_unwrap(obj, path))
    model = build_model(config)
    model.load_state_dict(sd, strict=True)
    log.info("loaded the authors' checkpoint %s as %s", path, config)
    return model.to(device).eval(), config


def save_checkpoint(model, config: ModelConfig, path, metadata: dict | None = None) -> Path:
    """Write ``model``'s state dict as safetensors with the config JSON in the metadata."""
    from safetensors.torch import save_file

    meta = {"format": FORMAT, "config": config.to_json()}
    for k, v in (metadata or {}).items():
        if k in meta:
            raise ValueError(f"metadata: key {k!r} is reserved")
        meta[str(k)] = v if isinstance(v, str) else json.dumps(v)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, os.fspath(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def read_metadata(path) -> dict:
    from safetensors import safe_open

    with safe_open(os.fspath(path), framework="pt") as f:
        return dict(f.metadata() or {})


def load_checkpoint(path, device="cpu"):
    """(model in eval mode, ModelConfig, metadata dict) from a file written by save_checkpoint."""
    from safetensors.torch import load_file

    meta = read_metadata(path)
    if "config" not in meta:
        raise ValueError(f"{path}: no 'config' in the safetensors metadata; not a MedSegMamba "
                         f"checkpoint (for the authors' .pt use load_authors_checkpoint)")
    config = ModelConfig.from_json(meta.pop("config"))
    model = build_model(config)
    model.load_state_dict(load_file(os.fspath(path)), strict=True)
    return model.to(device).eval(), config, meta
