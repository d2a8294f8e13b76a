"""`medsegmamba evaluate PRED REF`: the paper's metrics per structure, and a two-method test.

DSC (Dice), VS (volume similarity, 1 - |A-B|/(A+B)), ASSD and HD95 (mm, with the voxel
spacing; surfaces are the mask voxels with a face-neighbour outside). PRED and REF are label
files or folders matched by file name. Writes metrics.csv (one row per subject and structure)
and summary.md (mean ± std per structure and overall, like the paper's Table 1); `--compare
PRED2` adds the second method and a Wilcoxon signed-rank p per metric (* where p < 0.05).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

METRICS = ("dsc", "vs", "assd", "hd95")
SUFFIXES = (".nii.gz", ".nii", ".mgz", ".nrrd")


# --- metrics on masks ------------------------------------------------------------------------
def surface(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return mask & ~ndimage.binary_erosion(mask, ndimage.generate_binary_structure(3, 1), border_value=0)


def surface_distances(a: np.ndarray, b: np.ndarray, spacing) -> tuple[np.ndarray, np.ndarray]:
    """(distances from a's surface voxels to b's surface, and from b's to a's), in mm."""
    from scipy import ndimage

    sa, sb = surface(a), surface(b)
    to_b = ndimage.distance_transform_edt(~sb, sampling=spacing)
    to_a = ndimage.distance_transform_edt(~sa, sampling=spacing)
    return to_b[sa], to_a[sb]


def surface_distances_ref(a, b, spacing):
    """Brute-force twin of surface_distances (all pairs; small masks only)."""
    pa = np.argwhere(surface(a)) * np.asarray(spacing, float)
    pb = np.argwhere(surface(b)) * np.asarray(spacing, float)
    d = np.sqrt(((pa[:, None, :] - pb[None, :, :]) ** 2).sum(-1))
    return d.min(1), d.min(0)


def mask_metrics(a: np.ndarray, b: np.ndarray, spacing=(1.0, 1.0, 1.0)) -> dict:
    """Metrics of prediction mask `a` against reference `b`. NaN where undefined: everything
    when both are empty; the distances when one is empty (DSC 0, VS 0 then)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    na, nb = int(a.sum()), int(b.sum())
    if na + nb == 0:
        return dict.fromkeys(METRICS, float("nan"))
    out = {"dsc": 2.0 * int((a & b).sum()) / (na + nb), "vs": 1.0 - abs(na - nb) / (na + nb)}
    if na == 0 or nb == 0:
        out.update(assd=float("nan"), hd95=float("nan"))
        return out
    box = _bbox(a | b)
    dab, dba = surface_distances(a[box], b[box], spacing)
    out["assd"] = float((dab.sum() + dba.sum()) / (dab.size + dba.size))
    out["hd95"] = float(max(np.percentile(dab, 95), np.percentile(dba, 95)))
    return out


def _bbox(mask, margin: int = 1):
    idx = np.argwhere(mask)
    lo = np.maximum(idx.min(0) - margin, 0)
    hi = idx.max(0) + 1 + margin
    return tuple(slice(int(l), int(h)) for l, h in zip(lo, hi))


def label_metrics(pred: np.ndarray, ref: np.ndarray, labels, spacing) -> dict[int, dict]:
    if pred.shape != ref.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}")
    return {int(l): mask_metrics(pred == l, ref == l, spacing) for l in labels}


# --- files -----------------------------------------------------------------------------------
def _stem(path: Path) -> str:
    name = path.name
    for s in SUFFIXES:
        if name.endswith(s):
            return name[: -len(s)]
    return path.stem


def match_files(pred, ref) -> list[tuple[str, Path, Path]]:
    """(subject, pred file, ref file) pairs: two files, or two folders matched by name."""
    pred, ref = Path(pred), Path(ref)
    if pred.is_file() and ref.is_file():
        return [(_stem(ref), pred, ref)]
    if not (pred.is_dir() and ref.is_dir()):
        raise ValueError(f"PRED and REF: expected two files or two folders, got {pred} and {ref}")
    listing = lambda d: {_stem(f): f for f in sorted(d.iterdir()) if f.name.endswith(SUFFIXES)}  # noqa: E731
    p, r = listing(pred), listing(ref)
    common = sorted(set(p) & set(r))
    if not common:
        raise ValueError(f"{pred} and {ref}: no file names in common")
    for missing in sorted(set(r) - set(p)):
        log.warning("%s: no prediction for reference %s", pred, missing)
    return [(s, p[s], r[s]) for s in common]


def read_labels(path: Path):
    import nibabel as nib

    img = nib.load(str(path))
    data = np.rint(np.asarray(img.dataobj)).astype(np.int64)
    return data, tuple(float(z) for z in img.header.get_zooms()[:3])


def evaluate_files(pairs, labels) -> list[dict]:
    rows = []
    for subject, p, r in pairs:
        pred, _ = read_labels(p)
        ref, spacing = read_labels(r)
        for label, m in label_metrics(pred, ref, labels, spacing).items():
            rows.append({"subject": subject, "label": label, **m})
        log.info("evaluated %s", subject)
    return rows


# --- tables ----------------------------------------------------------------------------------
def per_structure(rows: list[dict], labels) -> dict[int, dict[str, np.ndarray]]:
    """{label: {metric: values over subjects (NaN where undefined)}}; key -1 = overall, the
    per-subject mean over structures."""
    subjects = sorted({r["subject"] for r in rows})
    table = {l: {m: np.full(len(subjects), np.nan) for m in METRICS} for l in labels}
    for r in rows:
        if r["label"] in table:
            for m in METRICS:
                table[r["label"]][m][subjects.index(r["subject"])] = r[m]
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            table[-1] = {m: np.nanmean(np.stack([table[l][m] for l in labels]), 0) for m in METRICS}
    return table


def wilcoxon_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p over subjects where both are defined (NaN if < 2 or
    all differences are zero)."""
    from scipy.stats import wilcoxon

    ok = ~(np.isnan(a) | np.isnan(b))
    if ok.sum() < 2 or np.all(a[ok] == b[ok]):
        return float("nan")
    return float(wilcoxon(a[ok], b[ok]).pvalue)


def _fmt(values: np.ndarray) -> str:
    v = values[~np.isnan(values)]
    if v.size == 0:
        return "–"
    return f"{v.mean():.3f} ± {v.std():.3f}"


def markdown(table, names: dict[int, str], table2=None, method_names=("PRED", "PRED2")) -> str:
    head = ["Structure"] + [m.upper() + (" (mm)" if m in ("assd", "hd95") else "") for m in METRICS]
    if table2 is not None:
        head = ["Structure", "Method"] + head[1:]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for l in [k for k in table if k != -1] + [-1]:
        name = "**Overall**" if l == -1 else names.get(l, str(l))
        if table2 is None:
            lines.append("| " + " | ".join([name] + [_fmt(table[l][m]) for m in METRICS]) + " |")
            continue
        for i, (t, method) in enumerate(((table, method_names[0]), (table2, method_names[1]))):
            cells = []
            for m in METRICS:
                cell = _fmt(t[l][m])
                if i == 1:
                    p = wilcoxon_p(table[l][m], table2[l][m])
                    cell += "" if np.isnan(p) else (f" (p={p:.3g}*)" if p < 0.05 else f" (p={p:.3g})")
                cells.append(cell)
            lines.append("| " + " | ".join([name if i == 0 else "", method] + cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: list[dict], path: Path, names: dict[int, str], method: str = "") -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "subject", "label", "structure", *METRICS])
        for r in rows:
            w.writerow([method, r["subject"], r["label"], names.get(r["label"], ""),
                        *(f"{r[m]:.6g}" for m in METRICS)])


# --- command ---------------------------------------------------------------------------------
def add_arguments(parser) -> None:
    parser.add_argument("pred", help="predicted label map(s): a file or a folder")
    parser.add_argument("ref", help="reference label map(s): a file or a folder (same names)")
    parser.add_argument("--compare", metavar="PRED2", help="a second method's predictions")
    parser.add_argument("-o", "--out", default="evaluation", help="output folder [evaluation]")
    parser.add_argument("--labels", help="comma-separated FreeSurfer labels [the 31 aseg classes]")


def method_names(pred: str, pred2: str | None) -> tuple[str, str]:
    """The two methods' names in the tables: each path's last part, or as many trailing parts as
    tell them apart (two runs' `out/orig_aseg.nii.gz` and `old/orig_aseg.nii.gz` share a file name)."""
    parts, parts2 = Path(pred).resolve().parts, Path(pred2 or "").resolve().parts
    for k in range(1, max(len(parts), len(parts2)) + 1):
        a, b = "/".join(parts[-k:]), "/".join(parts2[-k:])
        if a != b or not pred2:
            return Path(pred).name if k == 1 else a, (Path(pred2 or "").name if k == 1 else b)
    return pred, pred2 or ""


def run(args) -> int:
    from .labels import ASEG

    names = {s.label: s.name for s in ASEG}
    labels = ([int(x) for x in args.labels.split(",")] if args.labels
              else [s.label for s in ASEG if s.label != 0])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = evaluate_files(match_files(args.pred, args.ref), labels)
    method, method2 = method_names(args.pred, args.compare)
    write_csv(rows, out / "metrics.csv", names, method)
    table, table2 = per_structure(rows, labels), None
    if args.compare:
        rows2 = evaluate_files(match_files(args.compare, args.ref), labels)
        write_csv(rows2, out / "metrics_compare.csv", names, method2)
        if sorted({r["subject"] for r in rows2}) != sorted({r["subject"] for r in rows}):
            raise ValueError(f"{args.pred} and {args.compare}: different subjects; the test pairs them")
        table2 = per_structure(rows2, labels)
    md = markdown(table, names, table2, (method, method2))
    (out / "summary.md").write_text(md)
    print(md)
    return 0


def main(argv=None) -> int:
    import argparse

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="medsegmamba evaluate", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
