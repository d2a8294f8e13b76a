"""Networks: SS3D / VSS3D, MedSegMamba, the baselines, the registry of configs, checkpoints."""

from .baselines import SegMambaBot, TABSurfer
from .checkpoint import (authors_state_dict_to_ours, infer_config, load_authors_checkpoint,
                         load_checkpoint, save_checkpoint)
from .medsegmamba import MedSegMamba
from .registry import PRESETS, ModelConfig, build_model, get_config
from .ss3d import SS3D, SS3DAuthorsLayout
from .vss3d import VSS3DBlock, VSS3DBottleneck

__all__ = [
    "MedSegMamba", "SegMambaBot", "TABSurfer", "SS3D", "SS3DAuthorsLayout", "VSS3DBlock",
    "VSS3DBottleneck", "ModelConfig", "PRESETS", "build_model", "get_config", "save_checkpoint",
    "load_checkpoint", "load_authors_checkpoint", "authors_state_dict_to_ours", "infer_config",
]
