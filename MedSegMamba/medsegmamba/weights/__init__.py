"""Shipped weights: ``*.safetensors`` files in this folder, listed in ``registry.json``.

``registry.json`` is a JSON list of entries (or ``{"weights": [...]}``), each::

    {"name": "aseg-small", "file": "aseg-small.safetensors", "sha256": "<hex>",
     "config": {... ModelConfig fields ...}, "provenance": "...", "metrics": {...}}

The file is a checkpoint written by :func:`medsegmamba.models.save_checkpoint`; its embedded config
must equal the entry's ``config``. The sha256 is verified before the weights are loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent
REGISTRY = WEIGHTS_DIR / "registry.json"


def _entries(registry: Path = REGISTRY) -> list[dict]:
    if not registry.is_file():
        return []
    data = json.loads(registry.read_text())
    entries = data.get("weights", []) if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ValueError(f"{registry}: expected a list of entries or {{'weights': [...]}}")
    for e in entries:
        missing = {"name", "file", "sha256", "config"} - set(e)
        if missing:
            raise ValueError(f"{registry}: entry {e.get('name', '?')!r} lacks {sorted(missing)}")
    return entries


def available(registry: Path = REGISTRY) -> list[dict]:
    """Registry entries (name, file, sha256, config, provenance, metrics) of the shipped weights."""
    return [dict(e) for e in _entries(registry)]


def sha256sum(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find(name: str, registry: Path = REGISTRY) -> dict:
    entries = _entries(registry)
    if not entries:
        raise LookupError(f"weights: no pretrained weights are shipped yet ({registry} is missing "
                          f"or empty); pass the path of a .safetensors checkpoint instead of {name!r}")
    for e in entries:
        if e["name"] == name:
            return e
    raise LookupError(f"weights: unknown name {name!r}; available: {[e['name'] for e in entries]}")


def load_pretrained(name_or_path, device="cpu", registry: Path = REGISTRY):
    """(model in eval mode, ModelConfig, metadata) for a registry name or a checkpoint path.

    A registry name has its file's sha256 verified; a path (``.safetensors`` of ours) is loaded as is.
    """
    from ..models.checkpoint import load_checkpoint
    from ..models.registry import ModelConfig

    text = os.fspath(name_or_path)
    if os.sep in text or text.endswith(".safetensors") or Path(text).is_file():
        if not Path(text).is_file():
            raise FileNotFoundError(f"weights: no such checkpoint file {text!r}")
        return load_checkpoint(text, device)
    entry = find(text, Path(registry))
    path = Path(registry).parent / entry["file"]
    if not path.is_file():
        raise FileNotFoundError(f"weights: {entry['name']!r} lists {entry['file']!r}, not found at {path}")
    digest = sha256sum(path)
    if digest != entry["sha256"].lower():
        raise ValueError(f"weights: {path.name}: sha256 mismatch, expected {entry['sha256']}, got {digest}")
    model, config, meta = load_checkpoint(path, device)
    if config != ModelConfig.from_dict(entry["config"]):
        raise ValueError(f"weights: {entry['name']!r}: the registry config {entry['config']} differs "
                         f"from the file's {config.to_dict()}")
    meta.update({k: entry[k] for k in ("name", "provenance", "metrics") if k in entry})
    log.info("loaded pretrained weights %s (%s)", entry["name"], path.name)
    return model, config, meta
