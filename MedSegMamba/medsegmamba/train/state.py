"""Resumable training checkpoints in safetensors (no pickle).

One checkpoint is `<stem>.safetensors` (model weights, RNG states, JSON metadata: model config,
training config, iteration, optimizer hyper-parameters) plus `<stem>.optim-<i>.safetensors`
shards with the optimizer state, each at most `shard_bytes` (the GPU machine hands back files of
at most 16 MiB). The learning rate is a pure function of the iteration (schedule.py), so the
iteration is the whole scheduler state.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch

from ..errors import InputError

log = logging.getLogger(__name__)

FORMAT = "medsegmamba-train"
SHARD_BYTES = 12 * 2**20
SEED_OFFSET = 2.0  # a seeded class starts e^-2 (0.14) times as likely as its source: alive, not winning


def _atomic_save(tensors: dict, path: Path, metadata: dict) -> None:
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, os.fspath(tmp), metadata=metadata)
    os.replace(tmp, path)


def shard_paths(path) -> list[Path]:
    path = Path(path)
    return sorted(path.parent.glob(path.name.replace(".safetensors", "") + ".optim-*.safetensors"))


def save_training_state(path, model, optimizer, iteration: int, model_config, train_config: dict,
                        rng: dict[str, torch.Tensor], extra: dict | None = None,
                        shard_bytes: int = SHARD_BYTES) -> list[Path]:
    """Write the checkpoint; returns the files written (main file first)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    opt = optimizer.state_dict()
    optim_tensors = {}
    scalars = {}
    for pid, st in opt["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                optim_tensors[f"optim.{pid}.{k}"] = v.detach().contiguous().cpu()
            else:
                scalars[f"{pid}.{k}"] = v
    shards, cur, size = [], {}, 0
    for k, v in optim_tensors.items():
        nbytes = v.numel() * v.element_size()
        if cur and size + nbytes > shard_bytes:
            shards.append(cur)
            cur, size = {}, 0
        cur[k], size = v, size + nbytes
    if cur:
        shards.append(cur)
    for old in shard_paths(path):
        old.unlink()
    stem = path.name.replace(".safetensors", "")
    written = []
    for i, shard in enumerate(shards):
        p = path.with_name(f"{stem}.optim-{i}.safetensors")
        _atomic_save(shard, p, {"format": FORMAT + "-shard"})
        written.append(p)
    groups = opt["param_groups"]
    meta = {"format": FORMAT, "config": model_config.to_json(), "train": json.dumps(train_config),
            "iteration": str(int(iteration)), "param_groups": json.dumps(groups),
            "optim_scalars": json.dumps(scalars), "shards": json.dumps([p.name for p in written]),
            "extra": json.dumps(extra or {})}
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tensors.update({f"rng.{k}": v.contiguous().cpu() for k, v in rng.items()})
    _atomic_save(tensors, path, meta)
    return [path] + written


def load_training_state(path, model, optimizer=None, device="cpu") -> dict:
    """Load weights (and optimizer state) in place; returns {iteration, rng, train, extra, config}."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    with safe_open(os.fspath(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a training checkpoint (format {meta.get('format')!r}, "
                         f"expected {FORMAT!r})")
    tensors = load_file(os.fspath(path))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if optimizer is not None:
        optim = {}
        for name in json.loads(meta["shards"]):
            shard = path.parent / name
            if not shard.exists():
                raise InputError(f"optimizer shard {shard.name} is missing (copy all last*.safetensors)", path)
            optim.update(load_file(os.fspath(shard)))
        state: dict = {}
        for k, v in optim.items():
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v.to(device) if name != "step" else v
        for k, v in json.loads(meta["optim_scalars"]).items():
            pid, name = k.split(".", 1)
            state.setdefault(int(pid), {})[name] = v
        optimizer.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    return {"iteration": int(meta["iteration"]), "train": json.loads(meta["train"]),
            "extra": json.loads(meta.get("extra", "{}")), "config": meta["config"],
            "rng": {k[4:]: v for k, v in tensors.items() if k.startswith("rng.")}}


def parse_seed_classes(items) -> list[tuple[int, int]]:
    """["24=14", ...] (FreeSurfer labels TARGET=SOURCE) -> [(target class, source class), ...]."""
    from ..labels import ASEG

    index = {s.label: i for i, s in enumerate(ASEG)}
    pairs = []
    for item in items or ():
        try:
            target, source = (int(v) for v in str(item).split("="))
        except ValueError:
            raise ValueError(f"seed class: expected TARGET=SOURCE (two FreeSurfer labels), got {item!r}") from None
        for label in (target, source):
            if label not in index or label == 0:
                raise ValueError(f"seed class {item!r}: {label} is not one of the segmented FreeSurfer labels")
        if target == source:
            raise ValueError(f"seed class {item!r}: a class cannot be seeded from itself")
        pairs.append((index[target], index[source]))
    return pairs


def seed_class(model, target: int, source: int, offset: float = SEED_OFFSET) -> None:
    """Start class `target`'s row of the last layer (Conv_1x1, every architecture has it) as a copy
    of class `source`'s, with its bias `offset` lower.

    For a class the network has learnt to give ~0, such as a target added late: the soft Dice
    gradient of a class vanishes with its probability p (a factor p(1 - p)). The copy puts it where
    its source is, at e^-offset of the source's odds, and training separates the two from there."""
    head = model.Conv_1x1
    with torch.no_grad():
        head.weight[target].copy_(head.weight[source])
        head.bias[target] = head.bias[source] - offset
