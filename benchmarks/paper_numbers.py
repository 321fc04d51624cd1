"""The paper's per-image PSNRs (REFERENCE §5), for the comparison columns of `benchmarks/quality.py`.

Transcribed from REFERENCE §5.1 (denoising), §5.2 (super-resolution, Set5 and Set14 at x4 and x8) and
§5.3 (inpainting), in the column order of its tables. Each `Table` holds one set: the DIP numbers, the
baseline the benchmark also scores (bicubic, the noisy input, the masked input) and the table's means.

Where the numbers come from differs by task, and the results table says so (`Table.source`):
- SR: the published result images scored with the paper's protocol (Y channel, border shave), which
  reproduces the paper's set means to 0.01 dB. At x8 DIP is the sigma_p 0.05 run, the page's "ours" and
  the setting of experiments/configs/sr_zebra_x8.py.
- Denoising: the published DIP images (dated 2017-11-30; 8-bit noisy inputs). The paper's text gives only
  means over the 9 images (`DENOISE_TEXT`), and no number at all for sigma 50.
- Inpainting: the paper's Table 1 DIP row; the masked-input PSNRs come from the published masked inputs.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Optional


@dataclasses.dataclass(frozen=True)
class Table:
    set_name: str
    names: tuple  # the images as REFERENCE names them
    dip: tuple  # PSNR per image, in the order of `names`
    baseline: tuple
    dip_mean: float  # as the table prints it
    baseline_mean: float
    source: str

    def __post_init__(self):
        if not len(self.names) == len(self.dip) == len(self.baseline):
            raise ValueError(
                f"{self.set_name}: {len(self.names)} names, {len(self.dip)} DIP numbers and "
                f"{len(self.baseline)} baseline numbers"
            )


SET5 = ("baby", "bird", "butterfly", "head", "woman")
SET14 = (
    "baboon",
    "barbara",
    "bridge",
    "coastguard",
    "comic",
    "face",
    "flowers",
    "foreman",
    "lenna",
    "man",
    "monarch",
    "pepper",
    "ppt3",
    "zebra",
)
_SR_SOURCE = "REFERENCE §5.2: the published images scored with the paper's protocol"

# (factor, set) -> Table; baseline = bicubic.
SR = {
    (4, "Set5"): Table(
        "Set5",
        SET5,
        dip=(31.49, 31.80, 26.23, 31.04, 28.93),
        baseline=(31.78, 30.20, 22.13, 31.34, 26.75),
        dip_mean=29.90,
        baseline_mean=28.44,
        source=_SR_SOURCE,
    ),
    (4, "Set14"): Table(
        "Set14",
        SET14,
        dip=(22.29, 25.53, 24.38, 25.81, 22.18, 31.02, 26.14, 31.66, 30.83, 26.09, 29.98, 32.08, 24.38, 25.71),
        baseline=(22.44, 25.15, 24.47, 25.53, 21.59, 31.34, 25.33, 29.45, 29.84, 25.70, 27.45, 30.63, 21.78, 24.01),
        dip_mean=27.01,
        baseline_mean=26.05,
        source=_SR_SOURCE,
    ),
    (8, "Set5"): Table(
        "Set5",
        SET5,
        dip=(28.28, 27.09, 20.02, 29.55, 24.50),
        baseline=(27.28, 25.28, 17.74, 28.82, 22.74),
        dip_mean=25.89,
        baseline_mean=24.37,
        source=_SR_SOURCE + " (DIP: sigma_p 0.05)",
    ),
    (8, "Set14"): Table(
        "Set14",
        SET14,
        dip=(21.38, 23.94, 22.20, 24.21, 19.86, 29.52, 22.86, 27.87, 27.93, 23.57, 24.86, 29.18, 20.12, 20.62),
        baseline=(21.28, 23.44, 22.24, 23.65, 19.25, 28.79, 22.06, 25.37, 26.27, 23.06, 23.18, 26.55, 18.62, 19.59),
        dip_mean=24.15,
        baseline_mean=23.10,
        source=_SR_SOURCE + " (DIP: sigma_p 0.05)",
    ),
}
# [P] §3, x4 only: "29.90 and 27.00 PSNR on Set5 and Set14"; bicubic 28.43 and 26.05.
SR_TEXT = {"Set5": {"dip": 29.90, "bicubic": 28.43}, "Set14": {"dip": 27.00, "bicubic": 26.05}}

# The CBM3D page's 9 colour images; the page's 'hill' file is House (REFERENCE §5.1).
DENOISE_SET = ("F16", "House", "peppers", "kodim02", "kodim12", "baboon", "lena", "kodim01", "kodim03")
_DENOISE_SOURCE = "REFERENCE §5.1: the published DIP images (the paper's text gives only the mean)"

# sigma -> Table; baseline = the noisy input.
DENOISE = {
    25: Table(
        "CBM3D set",
        DENOISE_SET,
        dip=(33.69, 32.09, 31.15, 32.71, 32.68, 24.51, 32.56, 28.44, 33.79),
        baseline=(20.35, 20.30, 20.49, 20.59, 20.31, 20.32, 20.37, 20.28, 20.37),
        dip_mean=31.29,
        baseline_mean=20.37,
        source=_DENOISE_SOURCE,
    ),
    50: Table(
        "CBM3D set",
        DENOISE_SET,
        dip=(29.17, 29.69, 28.04, 28.50, 29.01, 21.14, 28.78, 25.51, 29.38),
        baseline=(15.09, 14.72, 15.02, 15.23, 14.71, 14.76, 14.81, 14.60, 14.76),
        dip_mean=27.69,
        baseline_mean=14.86,
        source=_DENOISE_SOURCE,
    ),
}
# [P] §3, sigma 25, mean of the 9 images.
DENOISE_TEXT = {"single run, 1800 steps": 29.22, "EMA": 30.43, "EMA, two runs averaged": 31.00, "CBM3D": 31.42}

INPAINT_SET = ("Barbara", "Boat", "House", "Lena", "Peppers", "C.man", "Couple", "Finger", "Hill", "Man", "Montage")
# Baseline = the masked input (published masked inputs); the means are REFERENCE's arithmetic.
INPAINT = Table(
    "11 gray images",
    INPAINT_SET,
    dip=(32.22, 33.06, 39.16, 36.16, 33.05, 29.8, 32.52, 32.84, 32.77, 32.20, 34.54),
    baseline=(8.90, 8.37, 7.91, 8.68, 8.62, 8.59, 8.94, 7.61, 9.39, 9.48, 9.29),
    dip_mean=33.48,
    baseline_mean=8.71,
    source="REFERENCE §5.3: the paper's Table 1 (masked input: the published inputs)",
)

# Other file names of the same images, per protocol: the project page's own file names (REFERENCE §5.1,
# §5.3) and the two spellings of Lena. Keys and values are normalised names (see `normalise`).
ALIASES = {
    "denoise": {"hill": "house", "lenna": "lena"},
    "sr": {"lena": "lenna"},
    "inpaint": {
        "lena512": "lena",
        "lenna": "lena",
        "peppers256": "peppers",
        "cameraman256": "c.man",
        "cameraman": "c.man",
        "fingerprint": "finger",
    },
}


def normalise(name: str) -> str:
    """A file stem as the tables name images: lower case, without a `_GT` / `_HR` suffix (zebra_GT -> zebra)."""
    return re.sub(r"[_-](gt|hr)$", "", name.lower())


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str  # as the table names it
    set_name: str
    dip: float
    baseline: float
    table: Table


def tables(protocol: str, *, factor: Optional[int] = None, sigma: Optional[float] = None) -> list[Table]:
    """The tables that hold the paper's numbers for these settings (none for an unpublished sigma or factor)."""
    if protocol == "sr":
        return [t for (f, _), t in SR.items() if f == factor]
    if protocol == "denoise":
        return [DENOISE[int(sigma)]] if sigma is not None and float(sigma) in (25.0, 50.0) else []
    if protocol == "inpaint":
        return [INPAINT]
    raise ValueError(f"unknown protocol {protocol!r}")


def lookup(protocol: str, stem: str, *, factor: Optional[int] = None, sigma: Optional[float] = None) -> Optional[Entry]:
    """The paper's numbers for the image with this file stem, or None when no table names it."""
    name = normalise(stem)
    name = ALIASES.get(protocol, {}).get(name, name)
    for table in tables(protocol, factor=factor, sigma=sigma):
        for i, n in enumerate(table.names):
            if n.lower() == name:
                return Entry(n, table.set_name, table.dip[i], table.baseline[i], table)
    return None
