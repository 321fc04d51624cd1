"""What `benchmarks/quality.py` does: the paper's evaluation protocols over a folder of images.

Three protocols (REFERENCE §3.2 for the settings, §4.2-§4.3 and §5 for inputs, scores and numbers):
- `sr`: high-resolution images; the low-resolution input is made as the notebook makes it (the
  HR centre-cropped to multiples of 32, then Pillow's antialiased Lanczos) unless `lr_dir` gives
  it; the settings of experiments/configs/sr_zebra_x{4,8}.py; scored on the Y channel with the
  border shave (`metrics.psnr_y`); bicubic is the baseline.
- `denoise`: clean colour images; Gaussian noise from a fixed key unless `noisy_dir` gives the
  noisy images; the settings of experiments/configs/denoise_f16.py (EMA of the outputs) for the
  paper's 1800 steps; K seeds averaged; RGB PSNR; the noisy input is the baseline.
- `inpaint`: gray images; a Bernoulli mask dropping half of the pixels, from a fixed key, unless
  `masked_dir` gives masked images (zeros = missing); the settings of
  experiments/configs/restore_barbara.py; gray PSNR; the masked input is the baseline.

Each image's results are written as soon as it is done (`out_dir/<stem>/` and a line of
`out_dir/results.jsonl`), so an interrupted run continues with `resume=True`. The restored image
is scored as it is saved, 8-bit, as the paper's numbers were computed from published PNGs.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from typing import Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from benchmarks import paper_numbers
from dip_jax import ensemble, io, metrics, operators
from dip_jax.restore import InputConfig
from experiments import restore_lib
from experiments.configs import denoise_f16, restore_barbara, sr_zebra_x4, sr_zebra_x8

PROTOCOLS = ("sr", "denoise", "inpaint")
# The factors the paper gives settings (sigma_p, steps) and numbers for.
SR_FACTORS = (4, 8)
# The SR notebook centre-crops the HR image to multiples of 32 before making the LR (REFERENCE §4.2);
# the paper's scores are taken over that crop (§4.3).
SR_CROP_MULTIPLE = 32
# [P] ran the 9-image denoising set for 1800 steps; the F16 config's 3000 is that figure's own setting
# (REFERENCE §3.2, notes under the table).
DENOISE_NUM_ITER = 1800
# The folder given instead of simulating each protocol's input: (flag, what it holds).
GIVEN_DIRS = {
    "sr": ("lr_dir", "low-resolution"),
    "denoise": ("noisy_dir", "noisy"),
    "inpaint": ("masked_dir", "masked"),
}
SCORES = {"sr": "PSNR-Y", "denoise": "PSNR (RGB)", "inpaint": "PSNR (gray)"}
BASELINES = {"sr": "bicubic", "denoise": "noisy input", "inpaint": "masked input"}
# The row of `restore_lib.write_outputs`'s metrics that scores the baseline under the protocol.
BASELINE_METRIC = {"sr": "psnr_y_baseline", "denoise": "psnr_input", "inpaint": "psnr_input"}
# Which output is scored, from the protocol's config: only the denoising recipe averages its outputs.
RESTORED = {
    "sr": "the last output",
    "denoise": "the exponential average of the outputs (0.99)",
    "inpaint": "the last output",
}
PAPER_NET = "standard"
RESULTS, SETTINGS, TABLE = "results.jsonl", "settings.json", "results.md"


def paper_config(protocol: str, factor: int = 4, sigma: float = 25.0) -> ml_collections.ConfigDict:
    """The restore config of the paper's settings for this protocol."""
    if protocol == "sr":
        if factor not in SR_FACTORS:
            raise ValueError(f"the sr protocol has the paper's settings for factors {SR_FACTORS}, got {factor}")
        config = (sr_zebra_x4 if factor == 4 else sr_zebra_x8).get_config()
        config.crop = (0, 0)  # zebra's crop; each image gets its own
    elif protocol == "denoise":
        config = denoise_f16.get_config()
        config.sigma = float(sigma)
        config.fit.num_iter = DENOISE_NUM_ITER
    elif protocol == "inpaint":
        config = restore_barbara.get_config()
    else:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    return config


def make_config(
    protocol: str,
    *,
    factor: int = 4,
    sigma: float = 25.0,
    num_iter: Optional[int] = None,
    seeds: int = 1,
    seed: int = 0,
    net_config: Optional[ml_collections.ConfigDict] = None,
) -> ml_collections.ConfigDict:
    """The paper's config with the run's changes; `net_config`'s net, net_overrides and input replace the paper's."""
    config = paper_config(protocol, factor, sigma)
    if num_iter is not None:
        config.fit.num_iter = num_iter
    config.seeds, config.seed = seeds, seed
    if net_config is not None:
        config.net = net_config.net
        config.net_overrides = ml_collections.ConfigDict(net_config.net_overrides.to_dict())
        config.input = ml_collections.ConfigDict(net_config.input.to_dict())
    restore_lib.validate(config)
    return restore_lib.resolve(config)


def settings_of(
    protocol: str, config: ml_collections.ConfigDict, images: str, given_dir: str, custom_net: bool
) -> dict:
    """What a run's numbers depend on: written beside them, and a resumed run must match it."""
    paper = paper_config(protocol, config.factor, config.sigma)
    s = {"protocol": protocol}
    if protocol == "sr":
        s["factor"] = int(config.factor)
    if protocol == "denoise":
        s["sigma"] = float(config.sigma)
    s.update(
        num_iter=int(config.fit.num_iter),
        paper_num_iter=int(paper.fit.num_iter),
        seeds=int(config.seeds),
        seed=int(config.seed),
        net=config.net,
        custom_net=custom_net,
        net_overrides=config.net_overrides.to_dict(),
        input=config.input.to_dict(),
        images=os.path.abspath(images),
        given_dir=os.path.abspath(given_dir) if given_dir else "",
    )
    return json.loads(json.dumps(s))  # as it reads back from settings.json (tuples become lists)


def stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def image_key(key: jax.Array, name: str) -> jax.Array:
    """The key of an image's noise or mask: from its name, so it does not depend on the folder's other images."""
    return jax.random.fold_in(key, zlib.crc32(name.encode()) & 0x7FFFFFFF)


def list_stems(folder: str) -> dict[str, str]:
    """stem -> path of the images in a folder; two files with one stem are refused."""
    out = {}
    for path in restore_lib.list_images(folder):
        if stem(path) in out:
            raise ValueError(f"{folder} has two images named {stem(path)!r}: {out[stem(path)]} and {path}")
        out[stem(path)] = path
    return out


def select_images(paths: list[str], max_images: int, max_size: int) -> tuple[list[str], list[tuple[str, str]]]:
    """The first `max_images` images (0: all) whose longer side is at most `max_size` (0: any), and the skipped."""
    selected, skipped = [], []
    for path in paths:
        if max_images and len(selected) == max_images:
            break
        if max_size:
            h, w = io.load_image(path).shape[:2]
            if max(h, w) > max_size:
                skipped.append((stem(path), f"{w}×{h} is larger than --max_size={max_size}"))
                logging.info("skipping %s: %dx%d is larger than --max_size=%d", path, w, h, max_size)
                continue
        selected.append(path)
    return selected, skipped


def _gray(image, path: str):
    """A gray image as (H, W, 1): a colour file whose channels agree is read as gray."""
    if image.shape[-1] == 1:
        return image
    if bool(jnp.all(image == image[..., :1])):
        return image[..., :1]
    raise ValueError(f"{path} is a colour image; the inpaint protocol restores gray images (REFERENCE §5.3)")


def load_problem(protocol: str, config: ml_collections.ConfigDict, path: str, given: str, key: jax.Array):
    """(clean, observation, operator) of one image: simulated from it with `key`, or `given` (a file) as input."""
    c = config.copy_and_resolve_references()
    if protocol == "inpaint" and given:  # the published inputs: zeros are the missing pixels
        clean = _gray(jnp.asarray(io.load_image(path)), path)
        observation = _gray(jnp.asarray(io.load_image(given)), given)
        if observation.shape != clean.shape:
            raise ValueError(
                f"the masked image {given} is {observation.shape[1]}x{observation.shape[0]} but "
                f"{path} is {clean.shape[1]}x{clean.shape[0]}"
            )
        return clean, observation, operators.Inpainting((observation > 0).astype(jnp.float32))
    if given:
        c.observation, c.clean = given, path
    else:
        c.image = path
    if protocol == "sr" and not given:
        h, w = io.load_image(path).shape[:2]
        c.crop = (h // SR_CROP_MULTIPLE * SR_CROP_MULTIPLE, w // SR_CROP_MULTIPLE * SR_CROP_MULTIPLE)
        if 0 in c.crop:
            raise ValueError(
                f"{path} is {w}x{h}: the sr protocol centre-crops it to multiples of {SR_CROP_MULTIPLE} "
                "(REFERENCE §4.2), so each side needs at least that many pixels"
            )
    clean, observation, operator = restore_lib.load_problem(c, key)
    if protocol == "inpaint":
        clean, observation = _gray(clean, path), _gray(observation, path)
    return clean, observation, operator


def fit_image(config: ml_collections.ConfigDict, observation, operator, clean, keys: jax.Array):
    """Every seed of one image (`ensemble.fit_seeds`) with the config's net and fit; (result, timing, net)."""
    out_h, out_w, out_c = operator.output_shape(observation.shape)
    net = restore_lib.build_net(config, out_c, (out_h, out_w))
    fcfg = restore_lib.fit_config(config)
    input_config = InputConfig(config.input.kind, config.input.channels, config.input.scale)
    progress = restore_lib.Progress(fcfg.num_iter, config.log_every)
    result = ensemble.fit_seeds(
        observation, operator, net, fcfg, keys, input_config=input_config, clean=clean, callback=progress
    )
    jax.block_until_ready(result.mean)
    timing = {
        "seconds": time.perf_counter() - progress.start,
        "seconds_per_iter": progress.seconds_per_iter(),
        "compile_seconds": progress.first[1] - progress.start,
    }
    return result, timing


def score(protocol: str, image, clean) -> float:
    """The protocol's PSNR: Y channel with the border shave for SR (REFERENCE §4.3), all channels otherwise."""
    return float(metrics.psnr_y(image, clean) if protocol == "sr" else metrics.psnr(image, clean))


def write_image(image_dir: str, protocol: str, config, clean, observation, operator, result) -> dict:
    """`restored.png` (scored as saved: 8-bit) and the restore CLI's outputs; the image's scores."""
    os.makedirs(image_dir, exist_ok=True)
    # The mean over seeds of each seed's output (its EMA where the config averages); seed 0's with one seed.
    restored = result.mean
    io.save_image(os.path.join(image_dir, "restored.png"), restored)
    details = restore_lib.write_outputs(image_dir, config, clean, observation, result, int(config.seeds), operator)
    return {
        "psnr": score(protocol, io.to_uint8(restored) / 255.0, clean),
        "baseline_psnr": details[BASELINE_METRIC[protocol]],
        "metrics": details,
    }


def restore_image(protocol: str, config, path: str, given: str, problem: tuple, keys: jax.Array, out_dir: str) -> dict:
    """Fit one image, write its folder `out_dir/<stem>/`; its row of results."""
    clean, observation, operator = problem
    result, timing = fit_image(config, observation, operator, clean, keys)
    row = {
        "image": stem(path),
        "file": os.path.abspath(path),
        "given": given,
        "shape": list(clean.shape),
        "observation_shape": list(observation.shape),
        "score": SCORES[protocol],
        "baseline": BASELINES[protocol],
        "num_params": sum(int(x.size) for x in jax.tree_util.tree_leaves(result.state.params)) // len(keys),
        **timing,
    }
    image_dir = os.path.join(out_dir, stem(path))
    row.update(write_image(image_dir, protocol, config, clean, observation, operator, result))
    with open(os.path.join(image_dir, "metrics.json"), "w") as f:
        json.dump(row, f, indent=2)
    return row


def read_rows(out_dir: str) -> list[dict]:
    rows = []
    path = os.path.join(out_dir, RESULTS)
    if not os.path.isfile(path):
        return rows
    with open(path) as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short when the run was killed: that image is redone
                logging.warning("ignoring an incomplete line of %s", path)
    return rows


def append_row(out_dir: str, row: dict) -> None:
    with open(os.path.join(out_dir, RESULTS), "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def previous_rows(out_dir: str, resume: bool, settings: dict) -> list[dict]:
    """The rows already done (resume), after checking the folder holds a run with the same settings; writes nothing."""
    if not (os.path.isdir(out_dir) and os.listdir(out_dir)):
        if os.path.exists(out_dir) and not os.path.isdir(out_dir):
            raise FileExistsError(f"{out_dir} exists and is not a directory")
        return []
    if not resume:
        raise FileExistsError(f"{out_dir} is not empty; pass --resume to continue the benchmark written there")
    settings_path = os.path.join(out_dir, SETTINGS)
    if not os.path.isfile(settings_path):
        raise FileExistsError(f"{out_dir} holds no {SETTINGS}: it is not a quality benchmark's folder")
    with open(settings_path) as f:
        saved = json.load(f)
    changed = [
        f"{k} {saved.get(k)!r} -> {settings.get(k)!r}"
        for k in sorted(set(saved) | set(settings))
        if saved.get(k) != settings.get(k)
    ]
    if changed:
        raise ValueError(f"--resume: {out_dir} holds a run with other settings ({'; '.join(changed)})")
    return read_rows(out_dir)


def start_out_dir(out_dir: str, settings: dict) -> None:
    """The folder's settings and environment, written once when the run starts."""
    os.makedirs(out_dir, exist_ok=True)
    if not os.path.isfile(os.path.join(out_dir, SETTINGS)):
        with open(os.path.join(out_dir, SETTINGS), "w") as f:
            json.dump(settings, f, indent=2)
        with open(os.path.join(out_dir, "environment.json"), "w") as f:
            json.dump(restore_lib.environment(), f, indent=2)


def run(
    protocol: str,
    images: str,
    out_dir: str,
    *,
    factor: int = 4,
    sigma: float = 25.0,
    num_iter: Optional[int] = None,
    seeds: int = 1,
    seed: int = 0,
    max_images: int = 0,
    max_size: int = 0,
    resume: bool = False,
    lr_dir: str = "",
    noisy_dir: str = "",
    masked_dir: str = "",
    net_config: Optional[ml_collections.ConfigDict] = None,
) -> dict:
    """Run `protocol` on the images of `images`, writing into `out_dir`; returns settings, rows and the table.

    `num_iter` (None: the paper's), `seeds`, `max_images` and `max_size` (0: no limit) shorten a run;
    `net_config` (a restore config) swaps in another net. Everything is checked and every input is
    loaded before the first fit, so a bad folder fails in seconds, not hours into the run.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
    if max_images < 0 or max_size < 0:
        raise ValueError(f"max_images and max_size must be >= 0 (0: no limit), got {max_images} and {max_size}")
    given_flag, given_what = GIVEN_DIRS[protocol]
    given_dirs = {"lr_dir": lr_dir, "noisy_dir": noisy_dir, "masked_dir": masked_dir}
    for flag, folder in given_dirs.items():
        if folder and flag != given_flag:
            raise ValueError(
                f"--{flag} is for the {[p for p, (f, _) in GIVEN_DIRS.items() if f == flag][0]} "
                f"protocol; {protocol} takes --{given_flag}"
            )
    given_dir = given_dirs[given_flag]
    config = make_config(
        protocol, factor=factor, sigma=sigma, num_iter=num_iter, seeds=seeds, seed=seed, net_config=net_config
    )
    paths = list(list_stems(images).values())
    given = list_stems(given_dir) if given_dir else {}
    selected, skipped = select_images(paths, max_images, max_size)
    missing = [stem(p) for p in selected if given_dir and stem(p) not in given]
    if missing:
        raise ValueError(
            f"--{given_flag}={given_dir} has no {given_what} image named {', '.join(missing)} "
            f"(matched by file stem with {images})"
        )
    settings = settings_of(protocol, config, images, given_dir, net_config is not None)
    done = {row["image"]: row for row in previous_rows(out_dir, resume, settings)}
    obs_key, fit_key = jax.random.split(jax.random.key(seed))
    keys = restore_lib.seed_keys(fit_key, seeds)

    todo = [p for p in selected if stem(p) not in done]
    if done:
        logging.info("resuming: %d image(s) done, %d to do", len(selected) - len(todo), len(todo))
    problems = {}
    for path in todo:  # every input loaded and checked before the first fit
        try:
            problems[path] = load_problem(
                protocol, config, path, given.get(stem(path), ""), image_key(obs_key, stem(path))
            )
        except ValueError as e:
            raise ValueError(f"{stem(path)}: {e}") from None
    start_out_dir(out_dir, settings)
    for i, path in enumerate(todo):
        logging.info("[%d/%d] %s: %d steps x %d seed(s)", i + 1, len(todo), path, config.fit.num_iter, seeds)
        row = restore_image(protocol, config, path, given.get(stem(path), ""), problems.pop(path), keys, out_dir)
        append_row(out_dir, row)
        done[row["image"]] = row
        logging.info(
            "%s: %s %.2f dB, %s %.2f dB", stem(path), row["score"], row["psnr"], row["baseline"], row["baseline_psnr"]
        )

    order = {stem(p): i for i, p in enumerate(paths)}
    rows = sorted(done.values(), key=lambda r: order.get(r["image"], len(order)))
    skipped = [(name, why) for name, why in skipped if name not in done]  # done when a resumed run had no limit
    table = results_table(settings, rows, skipped)
    with open(os.path.join(out_dir, TABLE), "w") as f:
        f.write(table)
    return {"settings": settings, "rows": rows, "skipped": skipped, "table": table}


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
        extra = "; zeros are the missing pixels" if p == "inpaint" else extra
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
    lines += [
        f"| image | size | DIP (ours) | DIP (paper) | Δ | {base} (ours) | {base} (paper) | Δ | seconds |",
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
