"""A picture of generated samples (image, and image with the target overlaid), for the docs.

    python3 -m medsegmamba.train.figure .data/label_maps docs/synth_samples.png
"""

from __future__ import annotations

import sys


def synth_figure(folder, path, n_maps: int = 3, samples: int = 4, seed: int = 3) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from ..labels import ASEG
    from .data import load_label_maps
    from .labelmaps import LabelTable, present_values
    from .synth import SynthConfig, SynthGenerator

    maps = load_label_maps(folder, n_maps)
    table = LabelTable(set().union(*(present_values(m).tolist() for m in maps)))
    gen = SynthGenerator(maps, table, SynthConfig(coords_per_map=2000), seed=seed)
    img, tgt = gen.sample(samples)
    colours = np.array([s.rgb for s in ASEG], float) / 255
    fig, ax = plt.subplots(2, samples, figsize=(3 * samples, 6))
    for i in range(samples):
        k = 48
        im, t = img[i, 0, :, :, k].numpy().T, tgt[i, :, :, k].numpy().T  # LIA: coronal
        ax[0, i].imshow(im, cmap="gray", vmin=0, vmax=1)
        over = np.concatenate([colours[t], (t > 0)[..., None] * 0.6], -1)
        ax[1, i].imshow(im, cmap="gray", vmin=0, vmax=1)
        ax[1, i].imshow(over)
        for a in ax[:, i]:
            a.axis("off")
    fig.suptitle("Synthetic training patches (96^3, coronal slice): image / target overlay")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


if __name__ == "__main__":
    synth_figure(sys.argv[1], sys.argv[2])
