"""The quality benchmark's report: the markdown table (results.md) and the HTML page (report.html).

Pure presentation of rows that `benchmarks.quality_lib` has scored: nothing here fits or scores.
"""

from __future__ import annotations

import base64
import html
import io as _io
import os
from typing import Optional

import numpy as np

from benchmarks import paper_numbers
from benchmarks.protocols import BASELINES, GIVEN_DIRS, PAPER_NET, RESTORED, SCORES, SR_CROP_MULTIPLE


def _f(x: Optional[float], sign: bool = False) -> str:
    if x is None:
        return ""
    return f"{x:+.2f}" if sign else f"{x:.2f}"


def differences(settings: dict) -> list[str]:
    """How the run's settings differ from the paper's; empty for a run at the paper's settings."""
    out = []
    if settings["num_iter"] != settings["paper_num_iter"]:
        out.append(f"num_iter={settings['num_iter']}, paper: {settings['paper_num_iter']}")
    if settings["custom_net"] or settings["net"] != PAPER_NET:
        out.append(f"net={settings['net']} (from --net_config), paper: {PAPER_NET}")
    if settings["seeds"] != 1 and settings["protocol"] != "denoise":  # the paper averaged runs only for denoising
        out.append(f"seeds={settings['seeds']} averaged, paper: one run")
    return out


def _inputs(settings: dict) -> str:
    p, given = settings["protocol"], settings["given_dir"]
    if given:
        flag, what = GIVEN_DIRS[p]
        extra = "; the whole HR image is restored" if p == "sr" else ""
        if p == "inpaint":
            extra = (f"; masks from --mask_dir={settings['mask_dir']}" if settings.get("mask_dir")
                     else "; no mask files: the zero pixels taken as the missing ones")
        return f"given: {what} images from --{flag}={given}{extra}"
    if p == "sr":
        return (
            f"simulated: HR centre-cropped to multiples of {SR_CROP_MULTIPLE}, LR = Pillow's antialiased Lanczos "
            "of it (the notebook's, REFERENCE §4.2)"
        )
    if p == "denoise":
        return (
            f"simulated: Gaussian noise of sigma {settings['sigma']:g} from seed {settings['seed']}, clipped, "
            "not quantised (the notebook's)"
        )
    return f"simulated: Bernoulli mask keeping each pixel with probability 0.5, from seed {settings['seed']}"


def paper_notes(settings: dict, tables: list) -> list[str]:
    p = settings["protocol"]
    notes = [
        f"Paper column: {t.source}; {t.set_name} means: DIP {t.dip_mean:.2f}, {BASELINES[p]} {t.baseline_mean:.2f}."
        for t in tables
    ]
    if p == "sr" and tables:
        notes.append(
            "The paper's bicubic images are LapSRN's (bicubic of its own LR, REFERENCE §4.2); ours is Pillow's "
            "bicubic of the notebook's LR, so the two differ by a few tenths of a dB."
        )
    if p == "sr" and settings["factor"] == 4:
        notes.append(
            "Paper text (x4): "
            + "; ".join(f"{s} DIP {v['dip']:.2f}, bicubic {v['bicubic']:.2f}" for s, v in paper_numbers.SR_TEXT.items())
            + "."
        )
    if p == "denoise" and settings["sigma"] == 25:
        notes.append(
            "Paper text (sigma 25, mean of the 9 images): "
            + "; ".join(f"{k} {v:.2f}" for k, v in paper_numbers.DENOISE_TEXT.items())
            + "."
        )
    return notes


def stated_denoising_mean(settings: dict) -> Optional[tuple[str, float]]:
    """The mean the paper's text states for the denoising protocol as run (REFERENCE §5.1), or None.

    The benchmark scores the 0.99 average of the outputs: one run is the paper's "EMA" number,
    two runs averaged its "EMA, two runs averaged" one. Only sigma 25 has stated numbers.
    """
    if settings["protocol"] != "denoise" or settings.get("sigma") != 25 or settings["seeds"] not in (1, 2):
        return None
    label = "EMA, two runs averaged" if settings["seeds"] == 2 else "EMA"
    return label, paper_numbers.DENOISE_TEXT[label]


def results_table(settings: dict, rows: list[dict], skipped: list[tuple[str, str]] = ()) -> str:
    """The markdown report: the settings, a row per image with the paper's numbers beside ours, the means."""
    p = settings["protocol"]
    what = {"sr": f"x{settings.get('factor')}", "denoise": f"sigma {settings.get('sigma', 0):g}", "inpaint": "50%"}[p]
    lines = [f"# DIP quality benchmark: {p} {what}", ""]
    diffs = differences(settings)
    if diffs:
        lines += [f"**REDUCED SETTINGS ({'; '.join(diffs)})**: not comparable with the paper's numbers.", ""]
    net = settings["net"] + (f", {rows[0]['num_params']:,} parameters" if rows else "")
    lines += [
        "| setting | value |",
        "|---|---|",
        f"| protocol | {p} {what} |",
        f"| num_iter | {settings['num_iter']} (paper: {settings['paper_num_iter']}) |",
        f"| seeds | {settings['seeds']}"
        + (" (their restored images averaged)" if settings["seeds"] > 1 else "")
        + " |",
        f"| restored image | {RESTORED[p]} |",
        f"| seed | {settings['seed']} |",
        f"| net | {net}" + (" from --net_config" if settings["custom_net"] else " (the paper's)") + " |",
        f"| inputs | {_inputs(settings)} |",
        f"| images | {settings['images']} |",
        f"| score | {SCORES[p]} of the 8-bit restored image"
        + (
            ", Y channel, 4 px shaved at the top/left and 5 at the bottom/right (REFERENCE §4.3)"
            if p == "sr"
            else ", whole image"
        )
        + " |",
        "",
    ]
    paper = {
        r["image"]: paper_numbers.lookup(p, r["image"], factor=settings.get("factor"), sigma=settings.get("sigma"))
        for r in rows
    }
    base = BASELINES[p]
    # For denoising the per-image numbers are the published images' scores, not numbers the paper states.
    paper_column = "DIP (published image)" if p == "denoise" else "DIP (paper)"
    lines += [
        f"| image | size | DIP (ours) | {paper_column} | Δ | {base} (ours) | {base} (paper) | Δ | seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        e = paper[r["image"]]
        name = r["image"] + (f" ({e.set_name}: {e.name})" if e else "")
        h, w = r["shape"][:2]
        cells = [
            name,
            f"{w}×{h}",
            _f(r["psnr"]),
            _f(e and e.dip),
            _f(e and r["psnr"] - e.dip, True),
            _f(r["baseline_psnr"]),
            _f(e and e.baseline),
            _f(e and r["baseline_psnr"] - e.baseline, True),
            f"{r['seconds']:.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if rows:
        name = f"mean ({len(rows)} image{'s' if len(rows) > 1 else ''})"
        lines.append(
            f"| **{name}** | | {_f(np.mean([r['psnr'] for r in rows]))} | | | "
            f"{_f(np.mean([r['baseline_psnr'] for r in rows]))} | | | {sum(r['seconds'] for r in rows):.0f} |"
        )
    matched = [r for r in rows if paper[r["image"]]]
    if matched:
        ours, theirs = np.mean([r["psnr"] for r in matched]), np.mean([paper[r["image"]].dip for r in matched])
        ours_b = np.mean([r["baseline_psnr"] for r in matched])
        theirs_b = np.mean([paper[r["image"]].baseline for r in matched])
        lines.append(
            f"| **mean of the {len(matched)} with a paper number** | | {_f(ours)} | {_f(theirs)} | "
            f"{_f(ours - theirs, True)} | {_f(ours_b)} | {_f(theirs_b)} | {_f(ours_b - theirs_b, True)} | |"
        )
    stated = stated_denoising_mean(settings)
    if stated and matched:
        label, value = stated
        ours = np.mean([r["psnr"] for r in matched])
        lines.append(f"| **the paper's stated mean of its 9 images ({label})** | | {_f(ours)} (our {len(matched)}) "
                     f"| {_f(value)} | {_f(ours - value, True)} | | | | |")
    tables = []
    for r in matched:
        if paper[r["image"]].table not in tables:
            tables.append(paper[r["image"]].table)
    notes = paper_notes(settings, tables)
    if notes:
        lines += [""] + notes
    if skipped:
        lines += [""] + [f"Skipped {name}: {why}." for name, why in skipped]
    return "\n".join(lines).rstrip() + "\n"


CROP = 192  # side of the crops shown side by side, in the restored image's pixels


def _png_data_uri(image: np.ndarray) -> str:
    """An HWC [0, 1] image (or 8-bit array) as an inline PNG, so the page needs no other file."""
    from PIL import Image

    from dip_jax import io

    a = io.to_uint8(image) if np.asarray(image).dtype != np.uint8 else np.asarray(image)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    buffer = _io.BytesIO()
    Image.fromarray(a).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def centre_crop(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return image[top:top + side, left:left + side]


def crops(images: dict, size: tuple, side: int = CROP) -> dict:
    """The same centre window of each image; smaller ones (a low-resolution input) are first enlarged
    by pixel repetition to `size`, so every crop shows the same part of the scene."""
    out = {}
    for name, image in images.items():
        image = np.asarray(image)
        if image.shape[:2] != tuple(size):
            fy, fx = size[0] // image.shape[0], size[1] // image.shape[1]
            image = np.repeat(np.repeat(image, fy, axis=0), fx, axis=1)
        out[name] = centre_crop(image, side)
    return out


def _escape(text) -> str:
    return html.escape(str(text))


def _table_html(markdown_table: str) -> str:
    """The markdown report's tables as HTML tables (its other lines as paragraphs)."""
    out, rows = [], []

    def flush():
        if rows:
            head, *body = rows
            out.append("<table><thead><tr>" + "".join(f"<th>{c}</th>" for c in head) + "</tr></thead><tbody>"
                       + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in body)
                       + "</tbody></table>")
            rows.clear()

    for line in markdown_table.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set("-:") for c in cells):
                rows.append([_escape(c).replace("**", "") for c in cells])
            continue
        flush()
        if line.startswith("# "):
            out.append(f"<h1>{_escape(line[2:])}</h1>")
        elif line.strip():
            out.append(f"<p>{_escape(line).replace('**', '')}</p>")
    flush()
    return "\n".join(out)


def html_report(settings: dict, rows: list[dict], markdown_table: str, image_panels: dict) -> str:
    """report.html: the table, then per image its crops side by side and its PSNR curve; one file, offline.

    `image_panels` maps an image's name to ({panel title: image}, PSNR-curve PNG path or None).
    """
    parts = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
             f"<title>DIP quality benchmark: {_escape(settings['protocol'])}</title>",
             "<style>body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;"
             "margin:1em 0}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}"
             "figure{display:inline-block;margin:0 8px 8px 0;text-align:center}"
             "figure img{image-rendering:pixelated;width:256px;height:256px;object-fit:contain;background:#eee}"
             ".curve img{width:480px;height:auto;background:none}"
             "td:first-child,th:first-child{text-align:left}"
             "section{border-top:1px solid #ccc;margin-top:1.5em}</style>",
             "</head><body>", _table_html(markdown_table)]
    for row in rows:
        panels, curve = image_panels.get(row["image"], ({}, None))
        parts.append(f"<section class='image' id='{_escape(row['image'])}'><h2>{_escape(row['image'])}</h2>")
        for title, image in panels.items():
            parts.append(f"<figure><img alt='{_escape(title)}' src='{_png_data_uri(image)}'>"
                         f"<figcaption>{_escape(title)}</figcaption></figure>")
        if curve and os.path.isfile(curve):
            with open(curve, "rb") as f:
                uri = "data:image/png;base64," + base64.b64encode(f.read()).decode("ascii")
            parts.append(f"<figure class='curve'><img alt='PSNR curve' src='{uri}'>"
                         "<figcaption>PSNR against iteration</figcaption></figure>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
