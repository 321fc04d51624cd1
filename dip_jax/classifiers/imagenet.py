"""The ImageNet-1k classes: index <-> WordNet synset and names, and the classifiers' input crop.

`imagenet_classes.tsv` (package data) has one line per class, in the order of the 1000 logits
of ImageNet classifiers: the WordNet id, a tab, and the comma-separated names. It was made
from timm 1.0.31's `data/_info/imagenet_synsets.txt` and `imagenet_synset_to_lemma.txt`
(Apache-2.0) by joining the two on the synset; its names are, line by line, those of the
original DIP's `data/imagenet1000_clsid_to_human.txt` (checked when the file was made).
"""

from __future__ import annotations

import functools
import importlib.resources

import numpy as np

NUM_CLASSES = 1000


@functools.lru_cache(maxsize=1)
def _table() -> tuple[tuple[str, str], ...]:
    text = importlib.resources.files("dip_jax.classifiers").joinpath("imagenet_classes.tsv").read_text("utf-8")
    rows = tuple(tuple(line.split("\t", 1)) for line in text.splitlines() if line)
    if len(rows) != NUM_CLASSES:
        raise RuntimeError(f"imagenet_classes.tsv has {len(rows)} classes, expected {NUM_CLASSES}")
    return rows


def class_names() -> tuple[str, ...]:
    """The 1000 classes' names, e.g. names[281] == 'tabby, tabby cat'."""
    return tuple(names for _, names in _table())


def synsets() -> tuple[str, ...]:
    """The 1000 classes' WordNet ids, e.g. 'n02123045' for 281 (tabby)."""
    return tuple(synset for synset, _ in _table())


def class_name(index: int) -> str:
    """The first (most common) name of class `index`: 'tabby' for 281."""
    if not 0 <= int(index) < NUM_CLASSES:
        raise ValueError(f"an ImageNet class index is in [0, {NUM_CLASSES}), got {index}")
    return class_names()[int(index)].split(", ")[0]


def class_index(name_or_index) -> int:
    """The index of a class given by index (int or digits), WordNet id, or one of its names.

    A name must equal one of the class's comma-separated names (case-insensitive): 'black
    swan' is 100, 'cheeseburger' 933. The original notebook takes the first class whose
    names *contain* the string; we require a whole name and raise on ambiguity ('crane' is a
    bird, 134, and a machine, 517) so that a class is never chosen by accident.
    """
    if isinstance(name_or_index, (int, np.integer)) or str(name_or_index).strip().isdigit():
        index = int(name_or_index)
        if not 0 <= index < NUM_CLASSES:
            raise ValueError(f"an ImageNet class index is in [0, {NUM_CLASSES}), got {index}")
        return index
    query = str(name_or_index).strip().lower()
    if query in synsets():
        return synsets().index(query)
    matches = [i for i, names in enumerate(class_names()) if query in (n.strip().lower() for n in names.split(","))]
    if len(matches) == 1:
        return matches[0]
    if matches:
        listed = "; ".join(f"{i} ({class_names()[i]})" for i in matches)
        raise ValueError(f"{name_or_index!r} names several ImageNet classes: {listed}; give the index")
    near = [f"{i} ({names})" for i, names in enumerate(class_names()) if query in names.lower()][:8]
    hint = f"; classes whose names contain it: {'; '.join(near)}" if near else ""
    raise ValueError(f"no ImageNet class is named {name_or_index!r}{hint}")


def center_crop_resize(image, size: int, crop_fraction: float = 0.875) -> np.ndarray:
    """The usual ImageNet evaluation input: the central square holding `crop_fraction` of the
    shorter side, resized to size x size with Pillow's bicubic filter (HWC [0, 1] in and out).

    0.875 is 224 / (224 + 32), the centre crop of the EfficientNet(-Lite) evaluation.
    """
    from PIL import Image

    a = np.asarray(image, np.float32)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {a.shape}")
    h, w = a.shape[:2]
    side = max(1, int(round(min(h, w) * crop_fraction)))
    top, left = (h - side) // 2, (w - side) // 2
    crop = np.round(np.clip(a[top : top + side, left : left + side], 0.0, 1.0) * 255.0).astype(np.uint8)
    resized = Image.fromarray(crop).resize((size, size), Image.BICUBIC)
    return np.asarray(resized, np.float32) / 255.0
