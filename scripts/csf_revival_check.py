"""Can training bring back a class the network has learnt to give ~0? A CPU check on CSF (24).

From the shipped default weights, 15 AdamW steps (lr 2e-4, batch 1) on the same synthetic patches,
in each of three arms from the same start: Dice alone; Dice + cross-entropy; and Dice +
cross-entropy after seeding the CSF row of the last layer from the 3rd ventricle's
(train.state.seed_class, as `--seed-class 24=14` does). Prints the mean CSF probability at CSF
target voxels of two held-out patches, and how many voxels are labelled CSF. About 7 minutes an
arm on a 2-core CPU. Needs .data/label_maps (scripts/prepare_training_data.py).
    python3 scripts/csf_revival_check.py [ARM ...]      # arms 0 1 2 (default: all)
"""
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "MedSegMamba"))
from medsegmamba.labels import ASEG  # noqa: E402
from medsegmamba.train.config import TrainConfig  # noqa: E402
from medsegmamba.train.data import load_label_maps  # noqa: E402
from medsegmamba.train.labelmaps import LabelTable  # noqa: E402
from medsegmamba.train.losses import segmentation_loss  # noqa: E402
from medsegmamba.train.state import parse_seed_classes, seed_class  # noqa: E402
from medsegmamba.train.synth import SynthGenerator  # noqa: E402
from medsegmamba.weights import load_pretrained  # noqa: E402

CSF_CLASS = [s.label for s in ASEG].index(24)
ARMS = (("Dice alone", False, False), ("Dice + CE", True, False), ("seeded 24=14, Dice + CE", True, True))


def csf_stats(model, patches):
    """[(mean CSF probability at CSF target voxels, voxels labelled CSF)] per patch."""
    model.eval()
    rows = []
    with torch.no_grad():
        for image, target in patches:
            probs = torch.softmax(model.forward_logits(image).float(), 1)
            rows.append((probs[:, CSF_CLASS][target == CSF_CLASS].mean().item(),
                         int((probs.argmax(1) == CSF_CLASS).sum())))
    return rows


def main():
    torch.set_num_threads(2)
    torch.manual_seed(0)
    cfg = TrainConfig.from_file("configs/default.json")
    maps = load_label_maps(".data/label_maps", 4)
    table = LabelTable(set().union(*(np.unique(m).tolist() for m in maps)), cfg.choroid, cfg.csf)
    gen = SynthGenerator(maps, table, cfg.synth_config(), seed=11)
    train = [gen.sample(1) for _ in range(15)]
    held_out = [gen.sample(1) for _ in range(2)]
    start = load_pretrained("default")[0].float()
    print("shipped weights:", csf_stats(start, held_out))
    for arm in [int(a) for a in sys.argv[1:]] or range(len(ARMS)):
        name, use_ce, seeded = ARMS[arm]
        model = copy.deepcopy(start)
        if seeded:
            for target, source in parse_seed_classes(["24=14"]):
                seed_class(model, target, source)
            print(f"{name}, right after seeding:", csf_stats(model, held_out))
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4)
        t0 = time.time()
        for image, target in train:
            loss, _ = segmentation_loss(model.forward_logits(image), target, None, use_ce)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"{name} ({time.time() - t0:.0f} s):", csf_stats(model, held_out))

if __name__ == "__main__":
    main()
