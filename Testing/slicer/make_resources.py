"""Regenerate the extension's generated resources: the colour table (from medsegmamba.labels)
and the 128x128 icon (drawn here, no copied art).

    python Testing/slicer/make_resources.py
"""

from __future__ import annotations

import math
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLOR_TABLE = os.path.join(ROOT, "Resources", "ColorTables", "MedSegMambaFreeSurfer.csv")
ICON = os.path.join(ROOT, "Resources", "Icons", "MedSegMamba.png")


def colorTableText() -> str:
    """Slicer's CSV colour table: aseg structures, then the hippocampal subfields; label 0 clear."""
    from medsegmamba.labels import ASEG, HIPPOCAMPAL_SUBFIELDS

    lines = ["LabelValue,Name,Color_R,Color_G,Color_B,Color_A"]
    seen = set()
    for s in ASEG + HIPPOCAMPAL_SUBFIELDS:
        if s.label in seen:
            continue
        seen.add(s.label)
        alpha = 0 if s.label == 0 else 255
        lines.append(f"{s.label},{s.name},{s.rgb[0]},{s.rgb[1]},{s.rgb[2]},{alpha}")
    return "\n".join(lines) + "\n"


def drawIcon(path: str) -> None:
    from PIL import Image, ImageDraw

    size, scale = 128, 4  # draw large, then downsample for smooth edges
    big = size * scale
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    s = lambda v: int(v * scale)  # noqa: E731
    # Brain outline seen from above: two hemispheres.
    for x0 in (10, 66):
        draw.ellipse([s(x0), s(14), s(x0 + 52), s(114)], fill=(236, 196, 200, 255), outline=(120, 70, 90, 255), width=s(3))
    # Gyri: wavy lines on each hemisphere.
    for x0 in (10, 66):
        for k in range(4):
            y = 30 + k * 20
            pts = [(s(x0 + 8 + t), s(y + 4 * math.sin(t / 5.0 + k))) for t in range(0, 37, 2)]
            draw.line(pts, fill=(170, 110, 130, 255), width=s(2))
    # Deep structures in FreeSurfer colours: thalamus (green), putamen (magenta), hippocampus (yellow).
    draw.ellipse([s(44), s(52), s(62), s(74)], fill=(0, 118, 14, 255))
    draw.ellipse([s(66), s(52), s(84), s(74)], fill=(0, 118, 14, 255))
    draw.ellipse([s(30), s(44), s(42), s(70)], fill=(236, 13, 176, 255))
    draw.ellipse([s(86), s(44), s(98), s(70)], fill=(236, 13, 176, 255))
    draw.ellipse([s(32), s(78), s(52), s(90)], fill=(220, 216, 20, 255))
    draw.ellipse([s(76), s(78), s(96), s(90)], fill=(220, 216, 20, 255))
    image.resize((size, size), Image.LANCZOS).save(path)


def main() -> None:
    os.makedirs(os.path.dirname(COLOR_TABLE), exist_ok=True)
    with open(COLOR_TABLE, "w", newline="\n") as f:
        f.write(colorTableText())
    drawIcon(ICON)
    print(COLOR_TABLE)
    print(ICON)


if __name__ == "__main__":
    main()
