"""A stand-in for `python -m medsegmamba.cli` used by the Slicer tests.

    fake_segmenter.py segment IN -o OUTDIR --model M --device D --step S --progress json [--tta|--no-tta] [...]

Writes OUTDIR/<stem>_aseg.nii.gz on the input's grid (two boxes: Left-Hippocampus 17 where the
image is bright in the first half along the first axis, Right-Hippocampus 53 in the second half,
Left-Thalamus 10 in a corner block) and prints the same JSON lines as the real CLI.
--model sleep:<seconds> makes it hang (with a grandchild) so Cancel can be tested;
--model fail makes it report an error and exit 3.
It logs "fake segmenter options: tta=on|off" so tests can see that --tta came through (the labels
are the same either way).
"""

import json
import os
import subprocess
import sys
import time

import nibabel as nib
import numpy as np


def emit(**event):
    print(json.dumps(event), flush=True)


def main(argv):
    assert argv[0] == "segment", argv
    inputPath, outDir = argv[1], argv[argv.index("-o") + 1]
    model = argv[argv.index("--model") + 1]
    subject = os.path.basename(inputPath).split(".")[0]
    print("fake segmenter starting", flush=True)
    print(f"fake segmenter options: tta={'on' if '--tta' in argv else 'off'}", flush=True)
    emit(event="progress", subject=subject, stage="conform", fraction=0.1)
    if model.startswith("sleep:"):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        with open(os.path.join(os.path.dirname(inputPath), "grandchild.pid"), "w") as f:
            f.write(str(child.pid))
        emit(event="progress", subject=subject, stage="predict", fraction=0.2)
        time.sleep(float(model.split(":")[1]))
    if model == "fail":
        emit(event="error", subject=subject, message="model file is broken")
        return 3
    image = nib.load(inputPath)
    data = np.asarray(image.dataobj)
    labels = np.zeros(data.shape, np.int16)
    bright = data > data.mean()
    half = data.shape[0] // 2
    labels[:half][bright[:half]] = 17
    labels[half:][bright[half:]] = 53
    labels[:4, :4, :4] = 10
    emit(event="progress", subject=subject, stage="predict", fraction=0.8)
    os.makedirs(outDir, exist_ok=True)
    out = os.path.join(outDir, f"{subject}_aseg.nii.gz")
    nib.save(nib.Nifti1Image(labels, image.affine), out)
    emit(event="progress", subject=subject, stage="write", fraction=1.0)
    emit(event="done", subject=subject, outputs={"labels": out})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
