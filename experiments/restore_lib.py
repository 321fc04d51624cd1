"""What `experiments/restore.py` does: a config -> the problems -> one fit -> scores -> files.

`run` is the one driver. Every run goes the same way: check the config, read every image
(`experiments.problems`), fit all seeds of all images (`dip_jax.ensemble`, K >= 1 seeds),
score each image (`dip_jax.evaluation.evaluate`) and write its files
(`experiments.outputs`). Checkpoints are steps of that path, as in flax's
examples/imagenet: with `checkpoint_every`, the fit's state is saved every that many steps,
and `resume` starts the same path from the newest saved state.

A folder (`config.images`) is restored image after image (or as many at once as fill the
devices), each image's files published as soon as it is done, by one process or split
over several (`experiments.shards`); the folder's summary is written by the last process
to finish, or by `summarize`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import threading
import time
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from dip_jax import checkpoint, ensemble, memory, models, tiles
from dip_jax.evaluation import evaluate
from dip_jax.restore import code_shape
from experiments import outputs, shards
from experiments.problems import (
    FEATURE_TASKS,
    ConfigError,
    build_net,
    describe_unit,
    fit_config,
    input_config,
    list_images,
    load_problems,
    no_image_error,
    resolve,
    validate,
)
from experiments.progress import Progress, format_seconds

# Config fields a resumed run may change: how long it runs and how often it logs.
RESUMABLE_CHANGES = (("fit", "num_iter"), ("log_every",))
CHECKPOINTS = "checkpoints"
# metrics.json entries the last log line repeats (a task's own scores among them)
LOGGED_SCORES = ("psnr", "seconds", "target_", "feature_", "top1_")


def checkpoint_metadata(config: ml_collections.ConfigDict, problem, net) -> dict:
    """What a checkpoint must match to be resumed: the run's config but for its length, and the shapes."""
    run_config = json.loads(config.to_json_best_effort())
    for path in RESUMABLE_CHANGES:
        parent = run_config
        for name in path[:-1]:
            parent = parent[name]
        parent.pop(path[-1], None)
    out_h, out_w, _ = problem.output_shape
    return checkpoint.metadata(fit_config(config), problem.observation.shape, code_shape(net, out_h, out_w),
                               run_config=run_config)


def folder_names(paths: list[str]) -> list[str]:
    """Each image's subfolder of `out_dir`: the file's stem, or stem_extension where two files share a stem."""
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    return [stem if stems.count(stem) == 1 else f"{stem}_{os.path.splitext(p)[1].lstrip('.').lower()}"
            for stem, p in zip(stems, paths, strict=True)]


def run_fields(config: ml_collections.ConfigDict, net, problem, progress: Progress) -> dict:
    """What every image's metrics.json repeats about the run."""
    out = {"task": config.task, "net": config.net,
           "num_params": models.num_params(net, code_shape(net, *problem.output_shape[:2])),
           "num_iter": int(config.fit.num_iter), "seed": int(config.seed), "seeds": int(config.seeds),
           **progress.timings()}
    if config.task == "denoise":
        out["sigma"] = float(config.sigma)
    if config.task == "sr":
        out["factor"] = int(config.factor)
    if config.task in FEATURE_TASKS:
        out.update(describe_unit(problem.operator))
    if config.tv_weight:
        out.update(tv_weight=float(config.tv_weight), tv_beta=float(config.tv_beta))
    if progress.diverged_at is not None:
        out["diverged_at_step"] = progress.diverged_at
    return out


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped the run; what it had done is saved. `signal` is the signal's number."""

    def __init__(self, message: str, signal_number: int):
        super().__init__(message)
        self.signal = signal_number


class BatchIncomplete(Exception):
    """Some images of a folder could not be restored; the others were, and the summary names each failure."""


@contextlib.contextmanager
def interruptible():
    """While inside, SIGINT and SIGTERM set a flag instead of stopping the process (a second one stops it).

    Yields a function that returns the number of the signal received, or 0. Outside the main
    thread, where Python cannot install handlers, nothing is caught.
    """
    received = []  # (signal, time)

    def handler(signum, frame):
        if received:
            if signum == received[0][0] and time.monotonic() - received[0][1] < 1.0:
                return  # the same signal delivered twice at once (e.g. to the whole process group)
            raise KeyboardInterrupt  # asked again: stop at once
        received.append((signum, time.monotonic()))
        logging.warning("%s received: finishing the current step, then saving the fit so far "
                        "(send it again to stop at once)", signal.Signals(signum).name)

    if threading.current_thread() is not threading.main_thread():
        yield lambda: 0
        return
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: received[0][0] if received else 0
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def tile_problems(config: ml_collections.ConfigDict, problems) -> tuple[list, list]:
    """(one `tiles.TileGrid` per image, every image's tiles as problems of their own, image by image)."""
    grids, tiled = [], []
    for problem in problems:
        grid = tiles.grid_for(problem.observation.shape, problem.output_shape, config.tile, config.tile_overlap)
        margin = problem.operator.tile_margin()
        if grid.overlap < margin and len(grid) > 1:
            raise ConfigError(f"--tile_overlap={config.tile_overlap} is less than the {margin * grid.scale} pixels "
                              f"the operator reaches across a tile's border")
        for i, (window, out_window) in enumerate(zip(grid.windows(), grid.windows(grid.scale), strict=True)):
            try:
                operator = problem.operator.tile(window)
            except NotImplementedError as e:
                raise ConfigError(f"--tile: {e}") from None
            tiled.append(dataclasses.replace(
                problem, name=f"{problem.name} (tile {i + 1} of {len(grid)})", observation=problem.observation[window],
                operator=operator, clean=None if problem.clean is None else problem.clean[out_window]))
        grids.append(grid)
    return grids, tiled


def untile(grids, results) -> list:
    """Each image's result from its tiles' results (in `tile_problems`' order): blended outputs, mean history."""
    merged, start = [], 0
    for grid in grids:
        parts, start = results[start:start + len(grid)], start + len(grid)
        if any(r is None for r in parts):  # interrupted before these tiles were fitted
            merged.append(None)
            continue
        k = parts[0].finals.shape[0]
        finals = jnp.stack([tiles.blend(jnp.stack([r.finals[i] for r in parts]), grid) for i in range(k)])
        emas = jnp.stack([tiles.blend(jnp.stack([r.emas[i] for r in parts]), grid) for i in range(k)])
        history = {}
        for name in parts[0].history:
            stacked = np.stack([np.asarray(r.history[name]) for r in parts])
            history[name] = stacked.any(axis=0) if stacked.dtype == bool else stacked.mean(axis=0)
        merged.append(ensemble.SeedsResult(finals=finals, emas=emas, mean=emas.mean(0), std=emas.std(0),
                                           history=history, state=None))
    return merged


def check_memory(config: ml_collections.ConfigDict, net, fcfg, fitted, images, images_per_fit: int = 0,
                 devices=None) -> None:
    """MemoryError, before anything is written, when the largest fit of `fitted` problems (the images, or
    their tiles) does not fit the device; the hint's tile size is for the largest of `images`.

    A fit takes `images_per_fit` problems (0: all those of the largest one's shape, as `fit_images` does).
    The estimate compiles the step the fit will run (dip_jax.memory), so it costs no extra time.
    """
    shapes = [p.observation.shape for p in fitted]
    largest = max(fitted, key=lambda p: p.output_shape[0] * p.output_shape[1])
    runs = config.seeds * (images_per_fit or shapes.count(largest.observation.shape))
    estimate = memory.fit_memory(net, largest.observation.shape, largest.operator, fcfg, runs, method=config.method,
                                 with_clean=largest.clean is not None, devices=devices)
    free = memory.available_bytes()
    h, w, _ = largest.output_shape
    held = memory.process_bytes()
    logging.info("memory: about %s for %d run(s) at %dx%d (%s) on top of the %s this process holds, %s free",
                 memory.bytes_text(estimate.total_bytes), runs, h, w, estimate.method,
                 "unknown" if held is None else memory.bytes_text(held),
                 "unknown" if free is None else memory.bytes_text(free))
    if config.check_memory:
        whole = max((p.output_shape[:2] for p in images), key=lambda s: s[0] * s[1])
        memory.check_fits(estimate, free, f"restoring {h}x{w} pixels with {runs} run(s) at once", image=whole,
                          overlap=config.tile_overlap)


def write_image(image_dir: str, config, problem, result, row: dict) -> None:
    """Every file of one image: the images, history, plots and metrics.json."""
    os.makedirs(image_dir, exist_ok=True)
    ema = config.fit.ema_decay is not None
    not_written = outputs.write_images(image_dir, problem, result, ema=ema)
    if not_written:  # a diverged fit: NaN images are not written, and metrics.json says which
        row["images_not_written"] = not_written
        logging.warning("%s: not written, their values are not finite (the fit diverged): %s", problem.name,
                        ", ".join(not_written))
    if result.history:
        outputs.write_history(image_dir, result.history)
        title = f"{config.task}: {os.path.basename(problem.name)}"
        if "psnr_obs" in result.history:
            outputs.plot_history(os.path.join(image_dir, "psnr.png"), {k: v[0] for k, v in result.history.items()},
                                 title, row.get("es_iteration"))
        outputs.plot_loss(os.path.join(image_dir, "loss.png"), {"loss": result.history["loss"][0]}, title)
    if not not_written:
        restored = "ema" if ema else "final"
        if config.fit.stop_at_detection and row.get("es_iteration"):  # stopped by itself: its result is the detection's
            restored = "es_ema" if ema else "es"
        outputs.plot_comparison(os.path.join(image_dir, "comparison.png"), problem, result, row, restored=restored)
    outputs.write_json(os.path.join(image_dir, "metrics.json"), row)


def input_files(config: ml_collections.ConfigDict, problems) -> list[str]:
    """Every file the run reads: no output may go where one of them is."""
    files = [p.path for p in problems] + [config.clean, config.flash, config.blur_kernel]
    if config.task == "inpaint" and config.mask not in ("bernoulli", "text", "box"):
        files.append(config.mask)
    return [f for f in files if f]


def run(
    config: ml_collections.ConfigDict,
    out_dir: str,
    overwrite: bool = False,
    *,
    checkpoint_every: int = 0,
    resume: bool = False,
    shard: Optional[shards.Shard] = None,
) -> dict:
    """Restore the configured image(s) and write every output into `out_dir`; returns the metrics.

    With `config.images` (a folder), see `run_folder`. With `checkpoint_every`, the fit's state
    (all seeds) is saved to `out_dir/checkpoints` every that many steps; `resume` continues from
    the newest one there (same config apart from num_iter and log_every), giving the same result
    as a run that never stopped. SIGINT or SIGTERM ends the fit after the current step: the state
    is checkpointed, the outputs so far are written with `"partial": true`, and `Interrupted` is
    raised. Nothing is written before every input has been read and checked, no input is ever
    written over, and `overwrite` replaces only what an earlier run wrote (outputs.prepare_out_dir).
    Under jax.distributed the seeds are split over every process's devices and process 0 writes
    the files.
    """
    validate(config)
    config = resolve(config)
    if checkpoint_every < 0:
        raise ConfigError(f"checkpoint_every must be >= 0, got {checkpoint_every}")
    if config.images:
        if checkpoint_every:
            raise ConfigError("checkpoints are for one image (any --seeds); with --images, --resume redoes the "
                              "images not finished")
        return run_folder(config, out_dir, overwrite, resume=resume, shard=shard)
    if shard is not None and shard.count > 1:
        raise ConfigError("--shard splits a folder of images (--images) between processes")
    if (checkpoint_every or resume) and config.tile:
        raise ConfigError("checkpoints and --resume are for one image fitted whole, not --tile")
    processes = jax.process_count()
    if processes > 1 and (checkpoint_every or resume):
        raise ConfigError("checkpoints and --resume are for one process; across processes, a run starts over")
    writes = jax.process_index() == 0  # across processes, process 0 writes the files
    fcfg = fit_config(config)
    obs_key, fit_key = jax.random.split(jax.random.key(config.seed))
    problems, failures = load_problems(config, obs_key)
    grids, fitted = tile_problems(config, problems) if config.tile else (None, problems)
    first = fitted[0]  # with tiles: the first tile, whose shape every tile has
    net = build_net(config, first)
    code = input_config(config, first)
    keys = ensemble.seed_keys(fit_key, config.seeds)

    check_memory(config, net, fcfg, fitted, problems)

    checkpoint_dir = os.path.join(out_dir, CHECKPOINTS)
    meta = checkpoint_metadata(config, first, net)
    state, previous = None, {}
    if resume:  # checked before anything is written: a bad folder leaves every file as it was
        checkpoint.check(checkpoint_dir, meta)
        template = ensemble.initial_state(first.observation, first.operator, net, fcfg, keys, input_config=code,
                                          input_image=first.code_image)
        state, previous = checkpoint.restore(checkpoint_dir, template, meta)
        logging.info("resuming from step %d of %s", int(np.max(state.step)), checkpoint_dir)
        kept = outputs.prepare_out_dir(out_dir, True, input_files(config, problems), preserve=(CHECKPOINTS,))
    else:
        kept = on_process_zero(lambda: outputs.prepare_out_dir(out_dir, overwrite, input_files(config, problems)),
                               set())
    resumed_from = None if state is None else int(np.max(state.step))

    def whole_history(history: dict) -> dict:
        if not previous or not history:
            return dict(history or previous)
        return {k: np.concatenate([previous[k], np.asarray(history[k])], axis=1) for k in previous}

    def save_checkpoint(state, history):
        checkpoint.save(checkpoint_dir, state, meta, whole_history(history))

    resume_options = {}
    if state is not None:
        resume_options["state"] = state
    if checkpoint_every:
        resume_options.update(checkpoint_every=checkpoint_every, checkpoint_fn=save_checkpoint)

    logging.info(
        "restoring %s x %d seed(s) with %s (%d parameters) for %d steps on %s%s",
        "x".join(map(str, first.observation.shape)), config.seeds, config.net,
        models.num_params(net, code_shape(net, *first.output_shape[:2])), fcfg.num_iter, jax.default_backend(),
        f" ({jax.device_count()} devices of {processes} processes)" if processes > 1 else "",
    )
    if grids:
        logging.info("in %d tile(s) of %dx%d pixels overlapping by %d", len(fitted), *first.output_shape[:2],
                     config.tile_overlap)
    progress = Progress(fcfg.num_iter, config.log_every, first_step=resumed_from or 0)
    with interruptible() as interrupted:
        if grids:
            result = fit_tiles(config, fitted, grids, net, fcfg, keys, progress, interrupted)[0]
        else:
            result = ensemble.fit_seeds(
                first.observation, first.operator, net, fcfg, keys, input_config=code, input_image=first.code_image,
                clean=first.clean, callback=progress, method=config.method, interrupted=interrupted,
                **resume_options,
            )
        jax.block_until_ready(result.finals)
        signal_number = interrupted()
        if processes > 1:
            signal_number = int(np.max(multihost_utils.process_allgather(np.int32(signal_number))))
        # a signal from here on waits for the files to be written: the results are complete
        problem = problems[0]
        row = score_image(config, problem, result, net, progress, fcfg, whole_history, resumed_from,
                          grids[0] if grids else None)
        if signal_number and not finished(row, fcfg):
            row.update(partial=True, interrupted_by=signal.Signals(signal_number).name)
            if not checkpoint_every and processes == 1 and not grids:
                save_checkpoint(result.state, result.history)
        if writes:
            staged = outputs.staging_dir(out_dir)
            write_image(staged, config, problem, result.replace(history=whole_history(result.history)), row)
            outputs.write_run_files(staged, config)
            outputs.publish(staged, out_dir, out_dir, kept)
            outputs.finish_out_dir(out_dir, kept)
    log_scores([row])
    if signal_number:
        raise Interrupted(f"interrupted by {signal.Signals(signal_number).name} at step {row.get('steps_run', 0)} of "
                          f"{fcfg.num_iter}: the fit so far is saved in {out_dir} (the same command with --resume "
                          "continues it)", signal_number)
    return row


def on_process_zero(fn: Callable, elsewhere):
    """`fn()` on process 0 (all of them agree whether it worked); `elsewhere` on the others.

    Across processes, an error of process 0 (a folder it may not write) stops every process
    instead of leaving the others waiting for it in the fit.
    """
    if jax.process_count() == 1:
        return fn()
    result, error = elsewhere, None
    if jax.process_index() == 0:
        try:
            result = fn()
        except Exception as e:  # noqa: BLE001 - re-raised below, once every process knows
            error = e
    failed = int(multihost_utils.broadcast_one_to_all(np.int32(error is not None)))
    if error is not None:
        raise error
    if failed:
        raise OSError("process 0 could not start the run (its log says why)")
    return result


def finished(row: dict, fcfg) -> bool:
    return row.get("steps_run", fcfg.num_iter) >= fcfg.num_iter or bool(row.get("es_stopped"))


def score_image(config, problem, result, net, progress, fcfg, whole_history=dict, resumed_from=None,
                grid=None) -> dict:
    """The image's row of metrics.json: the run's fields, the image, `evaluate`'s scores, and the
    tiles' (`grid`) when it was fitted in tiles."""
    result = result.replace(history=whole_history(result.history))
    row = {**run_fields(config, net, problem, progress), "image": problem.name,
           "shape": list(problem.observation.shape)}
    if resumed_from is not None:
        row["resumed_from_step"] = resumed_from
    row.update(evaluate(problem.observation, problem.clean, result, problem.operator))
    if grid is not None:
        row.update(tile=config.tile, tile_overlap=config.tile_overlap, tiles=len(grid),
                   seam_ratio=tiles.seam_ratio(result.emas[0], grid))
    return row


def fit_tiles(config, tiled, grids, net, fcfg, keys, progress, interrupted, devices=None) -> list:
    """Fit the tiles `tiled` of the images of `grids` (`tile_problems`), each with its own operator; each image's
    result blended from its tiles' (None for an image a signal stopped before its tiles were fitted)."""
    cleans = [p.clean for p in tiled]
    results = ensemble.fit_images(
        [p.observation for p in tiled], [p.operator for p in tiled], net, fcfg, keys,
        input_config=input_config(config, tiled[0]), input_image=tiled[0].code_image,
        cleans=None if any(c is None for c in cleans) else cleans, callback=progress, method=config.method,
        devices=devices, interrupted=interrupted,
    )
    jax.block_until_ready([r.finals for r in results if r is not None])
    return untile(grids, results)


def log_scores(rows: list[dict]) -> None:
    for row in rows:
        logging.info("%s: %s", row["image"], json.dumps({k: row[k] for k in row if k.startswith(LOGGED_SCORES)}))


# What the folder's summary repeats from its images' rows when they all agree.
RUN_KEYS = ("task", "net", "num_params", "num_iter", "seed", "seeds", "sigma", "factor", "tv_weight")
SUMMARY_FILES = ("metrics.json", "config.json", "environment.json")


def images_per_fit(config: ml_collections.ConfigDict, problems, devices) -> int:
    """How many images of one shape each fit takes: one, unless vmapped runs leave devices idle.

    One at a time, an image's files appear when it is done, and a process killed loses only the
    image it was fitting; images of one shape still compile once (the steps are cached). Vmapped
    over several devices, images join until their seeds fill the devices.
    """
    if not problems:
        return 1
    largest = max(p.output_shape[0] * p.output_shape[1] for p in problems)
    method = ensemble.choose_method(config.method, devices[0].platform, len(devices), largest)
    return max(1, len(devices) // config.seeds) if method == "vmap" else 1


def fits_of(problems, per_fit: int) -> list[list]:
    """The problems in fits of up to `per_fit` images of one shape, in the folder's order."""
    groups: dict[tuple, list] = {}
    for p in problems:
        groups.setdefault(tuple(p.observation.shape), []).append(p)
    return [group[i:i + per_fit] for group in groups.values() for i in range(0, len(group), per_fit)]


def run_folder(config: ml_collections.ConfigDict, out_dir: str, overwrite: bool = False, *, resume: bool = False,
               shard: Optional[shards.Shard] = None) -> dict:
    """Restore this process's share of the folder `config.images` (all of it by default); returns the metrics.

    `shard` (default: jax.distributed's process index and count, one share when not initialised)
    picks the share (`shards.partition`: balanced by pixels, the same in every process). Each
    image gets a subfolder of `out_dir` named after it, published whole when the image is done
    (staged, then renamed), with its metrics.json and config.json. An image that cannot be read
    is reported and the others are restored (then `BatchIncomplete` is raised at the end).
    `resume` skips the images whose folders are finished and redoes the others. The process
    that finishes the last share writes the folder's summary (`write_summary`: metrics.json with
    a row per image, config.json, environment.json, the manifest) and returns it; another
    returns its share's rows. A signal ends the current fit: its images are written with
    `"partial": true`, and `Interrupted` is raised.
    """
    shard = shard or shards.current_shard()
    paths = list_images(config.images)
    names = folder_names(paths)
    owners = shards.partition([shards.image_size(p, tuple(config.crop)) for p in paths], shard.count)
    mine = [j for j, owner in enumerate(owners) if owner == shard.index]
    saved_config = json.loads(config.to_json_best_effort())
    done = {}
    if resume:
        for j in mine:
            row = shards.finished_row(os.path.join(out_dir, names[j]))
            if row is not None:
                shards.check_same_config(os.path.join(out_dir, names[j]), saved_config)
                done[names[j]] = row
    todo = [j for j in mine if names[j] not in done]
    fcfg = fit_config(config)
    obs_key, fit_key = jax.random.split(jax.random.key(config.seed))
    problems, failures = load_problems(config, obs_key, only=todo)
    for path, message in failures:
        logging.warning("skipping %s: %s", path, message)
    if not problems and failures and shard.count == 1 and not done:
        raise no_image_error(config.images, failures)
    devices = jax.local_devices()  # the images are split between processes, an image's seeds are not
    if config.tile and problems:  # an image's tiles are one fit; cut now, so a bad --tile stops before any file
        grids, fitted = tile_problems(config, problems)
        per_fit, runs_per_fit = 1, max(len(g) for g in grids)
    else:
        fitted = problems
        per_fit = images_per_fit(config, problems, devices)
        runs_per_fit = min(per_fit, len(problems))
    net = build_net(config, fitted[0]) if problems else None
    if problems:
        check_memory(config, net, fcfg, fitted, problems, runs_per_fit, devices=devices)
    kept = shards.prepare(out_dir, names, owners, shard, overwrite=overwrite, resume=resume, finished=set(done),
                          inputs=input_files(config, problems) + [config.images], summary_files=SUMMARY_FILES)
    name_of = dict(zip(paths, names, strict=True))
    keys = ensemble.seed_keys(fit_key, config.seeds)
    fits = fits_of(problems, per_fit)
    logging.info("share %s of %s: %d image(s), %d done before, %d to restore in %d fit(s) x %d seed(s) with %s "
                 "for %d steps on %s", shard, config.images, len(mine), len(done), len(problems), len(fits),
                 config.seeds, config.net, fcfg.num_iter, jax.default_backend())
    rows, started, signal_number = {}, time.perf_counter(), 0
    with interruptible() as interrupted:
        for i, batch in enumerate(fits):
            if interrupted():
                break
            eta = ""
            if i:
                eta = f", ETA {format_seconds((time.perf_counter() - started) / i * (len(fits) - i))}"
            logging.info("[%d/%d fits done%s] %s", i, len(fits), eta, ", ".join(p.name for p in batch))
            progress = Progress(fcfg.num_iter, config.log_every)
            if config.tile:
                grids, tiled = tile_problems(config, batch)
                results = fit_tiles(config, tiled, grids, net, fcfg, keys, progress, interrupted, devices)
            else:
                grids = [None] * len(batch)
                results = ensemble.fit_images(
                    [p.observation for p in batch], batch[0].operator, net, fcfg, keys,
                    input_config=input_config(config, batch[0]), input_image=batch[0].code_image,
                    cleans=None if any(p.clean is None for p in batch) else [p.clean for p in batch],
                    callback=progress, method=config.method, devices=devices, interrupted=interrupted,
                )
                jax.block_until_ready([r.finals for r in results if r is not None])
            signal_number = interrupted()
            for problem, result, grid in zip(batch, results, grids, strict=True):
                if result is None:  # a signal came before its tiles were fitted: nothing to write
                    continue
                row = score_image(config, problem, result, net, progress, fcfg, grid=grid)
                if len(batch) > 1:
                    row["images_per_fit"] = len(batch)
                if signal_number and not finished(row, fcfg):
                    row.update(partial=True, interrupted_by=signal.Signals(signal_number).name)
                staged = outputs.staging_dir(out_dir, shards.staging_prefix(shard))
                write_image(staged, config, problem, result, row)
                outputs.write_run_files(staged, config, with_environment=False)
                outputs.publish(staged, os.path.join(out_dir, name_of[problem.path]), out_dir, kept, manifest=True)
                rows[name_of[problem.path]] = row
            log_scores([rows[name_of[p.path]] for p in batch if name_of[p.path] in rows])
        # a signal after the last fit has cost nothing: only one that left an image unfinished counts
        signal_number = interrupted()
        if all(name_of[p.path] in rows and not rows[name_of[p.path]].get("partial") for p in problems):
            signal_number = 0
    failed = [{"image": path, "error": message} for path, message in failures]
    if signal_number:
        finished_here = sum(not r.get("partial") for r in rows.values())
        raise Interrupted(f"interrupted by {signal.Signals(signal_number).name}: {len(done) + finished_here} of "
                          f"{len(mine)} image(s) of this share are finished in {out_dir}; the same command with "
                          "--resume restores the others", signal_number)
    run_id = shards.fingerprint(saved_config, names, shard.count)
    shards.write_marker(out_dir, shard, {"fingerprint": run_id, "images": names, "paths": paths, "owners": owners,
                                         "failed": failed, "config": saved_config,
                                         "environment": outputs.environment()})
    markers = shards.run_markers(out_dir, shard.count, run_id)
    if len(markers) == shard.count and shards.claim_summary(out_dir, run_id):  # the last share: all is done
        out = write_summary(out_dir, markers)
    else:
        share = [done.get(names[j]) or rows.get(names[j]) for j in mine]
        out = {**common_fields([r for r in share if r]), "shard": str(shard),
               "images": [r for r in share if r], "failed": failed}
        logging.info("share %s done; the folder's summary is written by the last share to finish (%d of %d done)",
                     shard, len(markers), shard.count)
    if failures:
        raise BatchIncomplete(f"{len(failures)} of {len(mine)} images could not be restored "
                              f"(listed in {os.path.join(out_dir, 'metrics.json')} once every share is done): "
                              + "; ".join(f"{os.path.basename(p)}: {m}" for p, m in failures))
    return out


def common_fields(rows: list[dict]) -> dict:
    """The run's fields its images agree on, and the seconds of all their fits together."""
    out = {}
    for key in RUN_KEYS:
        values = {json.dumps(r.get(key)) for r in rows}
        if rows and key in rows[0] and len(values) == 1:
            out[key] = rows[0][key]
    out["seconds"] = sum((r.get("seconds") or 0.0) / r.get("images_per_fit", 1) for r in rows)
    return out


def write_summary(out_dir: str, markers: list[dict]) -> dict:
    """The folder's metrics.json, config.json, environment.json and manifest, from the finished image folders.

    `markers` are the finished shares' (all of the run's, or those there are: then the summary
    names the shares missing). An image without a finished folder is listed as `unfinished`.
    """
    first = markers[0]
    names, paths, count = first["images"], first["paths"], first["count"]
    rows, unfinished = [], []
    failed = sorted((f for m in markers for f in m["failed"]), key=lambda f: paths.index(f["image"])
                    if f["image"] in paths else len(paths))
    failed_names = {names[paths.index(f["image"])] for f in failed if f["image"] in paths}
    for name in names:
        row = shards.finished_row(os.path.join(out_dir, name))
        if row is not None:
            rows.append(row)
        elif name not in failed_names:
            unfinished.append(name)
    summary = {**common_fields(rows), "images": rows, "failed": failed}
    if count > 1:
        summary["processes"] = count
    if unfinished:
        summary["unfinished"] = unfinished
    missing = sorted(set(range(count)) - {m["shard"] for m in markers})
    if missing:
        summary["shards_missing"] = [f"{i}/{count}" for i in missing]
    environment = dict(first["environment"])
    if count > 1:
        environment["processes"] = [m["environment"] for m in markers]
    files = {os.path.join(shards.SHARDS_DIR, f"{m['shard']}-of-{count}.json") for m in markers} | set(SUMMARY_FILES)
    for name in names:
        listed = outputs.read_manifest(os.path.join(out_dir, name))
        files |= {os.path.join(name, f) for f in listed | ({outputs.MANIFEST} if listed else set())}
    # the manifest first: a crash after it leaves files it lists, never files it does not
    outputs.write_json_atomic(os.path.join(out_dir, outputs.MANIFEST), {"files": sorted(files)})
    outputs.write_json_atomic(os.path.join(out_dir, "config.json"), first["config"])
    outputs.write_json_atomic(os.path.join(out_dir, "environment.json"), environment)
    outputs.write_json_atomic(os.path.join(out_dir, "metrics.json"), summary)
    logging.info("%s: %d image(s) restored, %d failed%s", os.path.join(out_dir, "metrics.json"), len(rows),
                 len(failed), f", {len(unfinished)} unfinished" if unfinished else "")
    return summary


def summarize(out_dir: str) -> dict:
    """Write the summary of the folder run in `out_dir` from what is finished there, whether or not every
    share is done (e.g. after a process died for good); returns it."""
    markers = shards.read_markers(out_dir)
    if not markers:
        raise FileNotFoundError(f"{out_dir} holds no finished share of a folder run (no {shards.SHARDS_DIR}/): "
                                "run the same command with --resume to finish it")
    newest = markers[0]
    return write_summary(out_dir, shards.run_markers(out_dir, newest["count"], newest["fingerprint"]))
