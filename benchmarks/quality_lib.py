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

Each image's folder `out_dir/<stem>/` (its files, its row in metrics.json) appears whole as soon
as it is done, by the rename `experiments.shards` uses for restore's folders, so an interrupted
run continues with `resume=True`; a folder may be split between processes the same way (`shard`),
and the last process to finish writes results.jsonl, the table and the report from the finished
folders (or `summarize` does). The restored image is scored as it is saved, 8-bit, as the paper's
numbers were computed from published PNGs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import zlib
from typing import Optional

import jax
import jax.numpy as jnp
import ml_collections
from absl import logging

from benchmarks import paper_numbers, report

# The protocols' constants live in benchmarks/protocols.py (the report reads them too).
from benchmarks.protocols import (  # noqa: E402
    BASELINE_METRIC,
    BASELINES,
    DENOISE_NUM_ITER,
    GIVEN_DIRS,
    PROTOCOLS,
    SCORES,
    SR_CROP_MULTIPLE,
    SR_FACTORS,
)
from dip_jax import ensemble, io, metrics, models, operators
from dip_jax.evaluation import evaluate
from dip_jax.restore import code_shape
from experiments import outputs, problems, shards
from experiments.configs import denoise_f16, restore_barbara, sr_zebra_x4, sr_zebra_x8
from experiments.progress import Progress, format_seconds

RESULTS, SETTINGS, TABLE, REPORT = "results.jsonl", "settings.json", "results.md", "report.html"


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
    problems.validate(config)
    return problems.resolve(config)


def settings_of(
    protocol: str, config: ml_collections.ConfigDict, images: str, given_dir: str, custom_net: bool,
    mask_dir: str = "",
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
    if mask_dir:
        s["mask_dir"] = os.path.abspath(mask_dir)
    return json.loads(json.dumps(s))  # as it reads back from settings.json (tuples become lists)


def stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def image_key(key: jax.Array, name: str) -> jax.Array:
    """The key of an image's noise or mask: from its name, so it does not depend on the folder's other images."""
    return jax.random.fold_in(key, zlib.crc32(name.encode()) & 0x7FFFFFFF)


def list_stems(folder: str) -> dict[str, str]:
    """stem -> path of the images in a folder; two files with one stem are refused."""
    out = {}
    for path in problems.list_images(folder):
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


def load_problem(protocol: str, config: ml_collections.ConfigDict, path: str, given: str,
                 key: jax.Array, mask: str = "") -> problems.ImageProblem:
    """One image's problem: simulated from it with `key`, or `given` (a file) as the input.

    For inpainting a given masked image, `mask` is its mask file (white = known); without one
    the mask is inferred as the non-zero pixels, which takes a black known pixel for a missing one.
    """
    c = config.copy_and_resolve_references()
    if protocol == "inpaint" and given:
        clean = _gray(jnp.asarray(io.load_image(path)), path)
        observation = _gray(jnp.asarray(io.load_image(given)), given)
        if observation.shape != clean.shape:
            raise ValueError(
                f"the masked image {given} is {observation.shape[1]}x{observation.shape[0]} but "
                f"{path} is {clean.shape[1]}x{clean.shape[0]}"
            )
        if mask:
            known = jnp.asarray(io.load_mask(mask))
            operators.inpainting.check_mask(known, observation.shape, f"the mask {mask}")
        else:
            logging.warning("%s: no mask file (--mask_dir), so its zero pixels are taken as the missing ones; "
                            "a black known pixel is then missing too", given)
            known = (observation > 0).astype(jnp.float32)
        return problems.ImageProblem(stem(path), observation, operators.Inpainting(known), clean, path=path)
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
    problem = problems.load_problem(c, key)
    problem = dataclasses.replace(problem, name=stem(path), path=path)
    if protocol == "inpaint":
        problem = dataclasses.replace(problem, clean=_gray(problem.clean, path),
                                      observation=_gray(problem.observation, path))
    return problem


def fit_image(config: ml_collections.ConfigDict, problem: problems.ImageProblem, keys: jax.Array):
    """Every seed of one image (`ensemble.fit_seeds`) with the config's net and fit; (result, timings, net)."""
    net = problems.build_net(config, problem)
    fcfg = problems.fit_config(config)
    progress = Progress(fcfg.num_iter, config.log_every)
    result = ensemble.fit_seeds(
        problem.observation, problem.operator, net, fcfg, keys, input_config=problems.input_config(config, problem),
        clean=problem.clean, callback=progress, method=config.method,
    )
    jax.block_until_ready(result.mean)
    return result, progress.timings(), net


def score(protocol: str, image, clean) -> float:
    """The protocol's PSNR: Y channel with the border shave for SR (REFERENCE §4.3), all channels otherwise."""
    return float(metrics.psnr_y(image, clean) if protocol == "sr" else metrics.psnr(image, clean))


def scores(protocol: str, config, problem: problems.ImageProblem, result) -> dict:
    """The image's scores: the protocol's PSNR of the 8-bit restored image (the mean over seeds of each
    seed's output, its EMA where the config averages), the baseline's, and every number of `evaluate`."""
    details = evaluate(problem.observation, problem.clean, result, problem.operator)
    return {
        "psnr": score(protocol, io.to_uint8(result.mean) / 255.0, problem.clean),
        "baseline_psnr": details[BASELINE_METRIC[protocol]],
        "metrics": details,
    }


def write_image(image_dir: str, config, problem: problems.ImageProblem, result, row: dict, settings: dict) -> None:
    """`restored.png` (the image scored, 8-bit), the restore CLI's images and history, metrics.json, and the
    run's settings (a resumed run checks them)."""
    os.makedirs(image_dir, exist_ok=True)
    outputs.write_json(os.path.join(image_dir, SETTINGS), settings)
    io.save_image(os.path.join(image_dir, "restored.png"), result.mean)
    outputs.write_images(image_dir, problem, result, ema=config.fit.ema_decay is not None)
    outputs.write_history(image_dir, result.history)
    outputs.plot_history(os.path.join(image_dir, "psnr.png"), {k: v[0] for k, v in result.history.items()},
                         f"{config.task}: {problem.name}")
    outputs.write_json(os.path.join(image_dir, "metrics.json"), row)


def restore_image(protocol: str, config, problem: problems.ImageProblem, given: str, keys: jax.Array,
                  image_dir: str, settings: dict) -> dict:
    """Fit one image, write its files into `image_dir`; its row of results."""
    result, timings, net = fit_image(config, problem, keys)
    out_h, out_w, _ = problem.output_shape
    row = {
        "image": problem.name,
        "file": os.path.abspath(problem.path),
        "given": given,
        "shape": list(problem.clean.shape),
        "observation_shape": list(problem.observation.shape),
        "score": SCORES[protocol],
        "baseline": BASELINES[protocol],
        "num_params": models.num_params(net, code_shape(net, out_h, out_w)),
        **timings,
        **scores(protocol, config, problem, result),
    }
    write_image(image_dir, config, problem, result, row, settings)
    return row


def report_panels(settings: dict, out_dir: str, row: dict, paper_dir: str = "") -> tuple[dict, Optional[str]]:
    """An image's crops for report.html, read from its folder (and `paper_dir`), and its PSNR curve's file."""
    protocol = settings["protocol"]
    image_dir = os.path.join(out_dir, row["image"])
    read = lambda name: io.load_image(os.path.join(image_dir, name))  # noqa: E731
    clean = read("clean.png")
    images = {"clean": clean, f"observation ({row['baseline']} {row['baseline_psnr']:.2f} dB)": read("observation.png"),
              f"DIP, ours ({row['psnr']:.2f} dB)": read("restored.png")}
    paper = list_stems(paper_dir).get(row["image"]) if paper_dir else None
    if paper:
        entry = paper_numbers.lookup(protocol, row["image"], factor=settings.get("factor"), sigma=settings.get("sigma"))
        images["DIP, the paper's image" + (f" ({entry.dip:.2f} dB)" if entry else "")] = io.load_image(paper)
    if protocol == "sr":  # the bicubic baseline, at the restored size
        images[f"bicubic ({row['baseline_psnr']:.2f} dB)"] = read("baseline.png")
        del images[next(k for k in images if k.startswith("observation"))]
        images = {"low-resolution input": read("observation.png"), **images}
    return report.crops(images, clean.shape[:2]), os.path.join(image_dir, "psnr.png")


def check_settings(path: str, settings: dict) -> None:
    """ValueError naming what changed when the settings saved at `path` (if any) are not `settings`."""
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return
    changed = [
        f"{k} {saved.get(k)!r} -> {settings.get(k)!r}"
        for k in sorted(set(saved) | set(settings))
        if saved.get(k) != settings.get(k)
    ]
    if changed:
        raise ValueError(f"--resume: {os.path.dirname(path)} holds a run with other settings ({'; '.join(changed)})")


def finished_rows(out_dir: str, names: list[str], resume: bool, settings: dict) -> dict[str, dict]:
    """The rows of the images `names` whose folders are finished (resume), after checking they were restored
    with `settings`; writes nothing. Without `resume`, a folder run's files there are an error."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise FileExistsError(f"{out_dir} exists and is not a directory")
    if not resume:
        if os.path.isfile(os.path.join(out_dir, SETTINGS)):
            raise FileExistsError(f"{out_dir} is not empty; pass --resume to continue the benchmark written there")
        return {}
    check_settings(os.path.join(out_dir, SETTINGS), settings)
    done = {}
    for name in names:
        row = shards.finished_row(os.path.join(out_dir, name))
        if row is not None:
            check_settings(os.path.join(out_dir, name, SETTINGS), settings)
            done[name] = row
    return done


def summary_files(settings: dict, rows: list[dict], skipped, out_dir: str, paper_dir: str = "") -> dict[str, str]:
    """results.jsonl, the table (results.md) and report.html of `rows`, by file name."""
    table = report.results_table(settings, rows, skipped)
    panels = {row["image"]: report_panels(settings, out_dir, row, paper_dir) for row in rows}
    return {RESULTS: "".join(json.dumps(row) + "\n" for row in rows), TABLE: table,
            REPORT: report.html_report(settings, rows, table, panels)}


def write_summary(out_dir: str, markers: list[dict], paper_dir: str = "") -> dict:
    """The folder's results.jsonl, table, report, settings and environment, from its finished image folders
    (`markers`: the finished shares'; an image without a finished folder is left out, and named)."""
    first = markers[0]
    settings, names = first["settings"], first["images"]
    rows = [row for row in (shards.finished_row(os.path.join(out_dir, n)) for n in names) if row is not None]
    skipped = [tuple(s) for s in first["skipped"]]
    unfinished = [n for n in names if n not in {r["image"] for r in rows}]
    if unfinished:
        logging.warning("%s: %d image(s) not finished: %s", out_dir, len(unfinished), ", ".join(unfinished))
    files = summary_files(settings, rows, skipped, out_dir, paper_dir)
    for name, text in files.items():  # each whole or absent: written under a temporary name, then renamed
        tmp = os.path.join(out_dir, f".{name}.{os.getpid()}")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(out_dir, name))
    outputs.write_json_atomic(os.path.join(out_dir, SETTINGS), settings)
    outputs.write_json_atomic(os.path.join(out_dir, "environment.json"), first["environment"])
    return {"settings": settings, "rows": rows, "skipped": skipped, "table": files[TABLE], "unfinished": unfinished}


def summarize(out_dir: str, paper_dir: str = "") -> dict:
    """The summary of the benchmark in `out_dir` from what is finished there, whether or not every share is."""
    markers = shards.read_markers(out_dir)
    if not markers:
        raise FileNotFoundError(f"{out_dir} holds no finished share of a benchmark (no {shards.SHARDS_DIR}/)")
    newest = markers[0]
    return write_summary(out_dir, shards.run_markers(out_dir, newest["count"], newest["fingerprint"]), paper_dir)


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
    mask_dir: str = "",
    net_config: Optional[ml_collections.ConfigDict] = None,
    paper_dir: str = "",
    shard: Optional[shards.Shard] = None,
) -> dict:
    """Run `protocol` on the images of `images`, writing into `out_dir`; returns settings, rows and the table.

    At the end it writes the table (results.md) and report.html: the table, each image's crops side by
    side (clean, observation, ours, and the paper's published image when `paper_dir` has one of that
    stem) and its PSNR curve, in one file that opens offline.
    `num_iter` (None: the paper's), `seeds`, `max_images` and `max_size` (0: no limit) shorten a run;
    `net_config` (a restore config) swaps in another net. Everything is checked and every input is
    loaded before the first fit, so a bad folder fails in seconds, not hours into the run.
    `shard` (default: jax.distributed's process index and count) restores a share of the images
    (`shards.partition`), each published whole; the last share to finish writes the summary and
    returns it, another returns its own rows.
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
    if mask_dir and not masked_dir:
        raise ValueError("--mask_dir holds the masks of the images in --masked_dir; give both")
    masks = list_stems(mask_dir) if mask_dir else {}
    selected, skipped = select_images(paths, max_images, max_size)
    missing = [stem(p) for p in selected if given_dir and stem(p) not in given]
    if missing:
        raise ValueError(
            f"--{given_flag}={given_dir} has no {given_what} image named {', '.join(missing)} "
            f"(matched by file stem with {images})"
        )
    settings = settings_of(protocol, config, images, given_dir, net_config is not None, mask_dir)
    shard = shard or shards.current_shard()
    names = [stem(p) for p in selected]
    owners = shards.partition([shards.image_size(p) for p in selected], shard.count)
    mine = [p for p, owner in zip(selected, owners, strict=True) if owner == shard.index]
    done = finished_rows(out_dir, [stem(p) for p in mine], resume, settings)
    obs_key, fit_key = jax.random.split(jax.random.key(seed))
    keys = ensemble.seed_keys(fit_key, seeds)

    todo = [p for p in mine if stem(p) not in done]
    if done:
        logging.info("resuming: %d image(s) done, %d to do", len(mine) - len(todo), len(todo))
    loaded = {}
    for path in todo:  # every input loaded and checked before the first fit
        try:
            key = image_key(obs_key, stem(path))
            loaded[path] = load_problem(protocol, config, path, given.get(stem(path), ""), key,
                                        masks.get(stem(path), ""))
        except ValueError as e:
            raise ValueError(f"{stem(path)}: {e}") from None
    kept = shards.prepare(out_dir, names, owners, shard, overwrite=False, resume=resume, finished=set(done),
                          inputs=[images])
    started = time.perf_counter()
    for i, path in enumerate(todo):
        eta = ""
        if i:  # from the images done so far in this run
            eta = f", ETA {format_seconds((time.perf_counter() - started) / i * (len(todo) - i))}"
        logging.info("[%d/%d done%s] %s: %d steps x %d seed(s)", i, len(todo), eta, path, config.fit.num_iter, seeds)
        staged = outputs.staging_dir(out_dir, shards.staging_prefix(shard))
        row = restore_image(protocol, config, loaded.pop(path), given.get(stem(path), ""), keys, staged, settings)
        outputs.publish(staged, os.path.join(out_dir, stem(path)), out_dir, kept)
        done[row["image"]] = row
        logging.info(
            "%s: %s %.2f dB, %s %.2f dB", stem(path), row["score"], row["psnr"], row["baseline"], row["baseline_psnr"]
        )

    run_id = shards.fingerprint(settings, names, shard.count)
    shards.write_marker(out_dir, shard, {"fingerprint": run_id, "images": names, "settings": settings,
                                         "skipped": [list(s) for s in skipped], "environment": outputs.environment()})
    markers = shards.run_markers(out_dir, shard.count, run_id)
    if len(markers) == shard.count and shards.claim_summary(out_dir, run_id):  # the last share: all is done
        return write_summary(out_dir, markers, paper_dir)
    rows = [done[stem(p)] for p in mine if stem(p) in done]
    logging.info("share %s done; the summary is written by the last share to finish (%d of %d done)", shard,
                 len(markers), shard.count)
    return {"settings": settings, "rows": rows, "skipped": skipped, "shard": str(shard),
            "table": report.results_table(settings, rows, skipped)}
