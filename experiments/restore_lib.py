"""What `experiments/restore.py` does: a config -> the problems -> one fit -> scores -> files.

`run` is the one driver. Every run goes the same way: check the config, read every image
(`experiments.problems`), fit all seeds of all images (`dip_jax.ensemble`, K >= 1 seeds),
score each image (`dip_jax.evaluation.evaluate`) and write its files
(`experiments.outputs`). Checkpoints are steps of that path, as in flax's
examples/imagenet: with `checkpoint_every`, the fit's state is saved every that many steps,
and `resume` starts the same path from the newest saved state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import threading
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from dip_jax import checkpoint, ensemble, memory, models, tiles
from dip_jax.evaluation import evaluate
from dip_jax.restore import code_shape
from experiments import outputs
from experiments.problems import (
    FEATURE_TASKS,
    ConfigError,
    build_net,
    describe_unit,
    fit_config,
    input_config,
    load_problems,
    resolve,
    validate,
)
from experiments.progress import Progress

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


def image_dirs(out_dir: str, problems, folder: bool) -> list[str]:
    """Where each image's files go: `out_dir` for one image; for a folder's, a subfolder each,
    named by the file's stem, or stem_extension where two files share a stem."""
    if not folder:
        return [out_dir]
    stems = [os.path.splitext(os.path.basename(p.path))[0] for p in problems]
    names = [stem if stems.count(stem) == 1 else f"{stem}_{os.path.splitext(p.path)[1].lstrip('.').lower()}"
             for stem, p in zip(stems, problems, strict=True)]
    return [os.path.join(out_dir, name) for name in names]


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


def check_memory(config: ml_collections.ConfigDict, net, fcfg, fitted, images) -> None:
    """MemoryError, before anything is written, when the largest group of `fitted` problems (the images,
    or their tiles) does not fit the device; the hint's tile size is for the largest of `images`.

    The estimate compiles the step the fit will run (dip_jax.memory), so it costs no extra time.
    """
    shapes = [p.observation.shape for p in fitted]
    largest = max(fitted, key=lambda p: p.output_shape[0] * p.output_shape[1])
    runs = config.seeds * shapes.count(largest.observation.shape)
    estimate = memory.fit_memory(net, largest.observation.shape, largest.operator, fcfg, runs, method=config.method,
                                 with_clean=largest.clean is not None)
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
) -> dict:
    """Restore the configured image(s) and write every output into `out_dir`; returns the metrics.

    With `config.images` (a folder), each image gets a subfolder of `out_dir` named after it,
    and `out_dir/metrics.json` holds a row per image; an image that cannot be read is reported
    there and the others are restored (then `BatchIncomplete` is raised at the end). With
    `checkpoint_every`, the fit's state (all seeds) is saved to `out_dir/checkpoints` every that
    many steps; `resume` continues from the newest one there (same config apart from num_iter
    and log_every), giving the same result as a run that never stopped. Checkpoints are for one
    image. SIGINT or SIGTERM ends the fit after the current step: the state is checkpointed (one
    image), the outputs so far are written with `"partial": true`, and `Interrupted` is raised.
    Nothing is written before every input has been read and checked, no input is ever written
    over, and `overwrite` replaces only what an earlier run wrote (outputs.prepare_out_dir).
    """
    validate(config)
    config = resolve(config)
    if checkpoint_every < 0:
        raise ConfigError(f"checkpoint_every must be >= 0, got {checkpoint_every}")
    if (checkpoint_every or resume) and (config.images or config.tile):
        raise ConfigError("checkpoints and --resume are for one image (any --seeds), not --images or --tile")
    fcfg = fit_config(config)
    obs_key, fit_key = jax.random.split(jax.random.key(config.seed))
    problems, failures = load_problems(config, obs_key)
    for path, message in failures:
        logging.warning("skipping %s: %s", path, message)
    grids, fitted = tile_problems(config, problems) if config.tile else (None, problems)
    first = fitted[0]  # with tiles: the first tile, whose shape every tile has
    net = build_net(config, first)
    code = input_config(config, first)
    keys = ensemble.seed_keys(fit_key, config.seeds)

    check_memory(config, net, fcfg, fitted, problems)

    checkpoint_dir = os.path.join(out_dir, CHECKPOINTS)
    meta = checkpoint_metadata(config, first, net) if not config.images else None
    state, previous = None, {}
    if resume:  # checked before anything is written: a bad folder leaves every file as it was
        checkpoint.check(checkpoint_dir, meta)
        template = ensemble.initial_state(first.observation, first.operator, net, fcfg, keys, input_config=code,
                                          input_image=first.code_image)
        state, previous = checkpoint.restore(checkpoint_dir, template, meta)
        logging.info("resuming from step %d of %s", int(np.max(state.step)), checkpoint_dir)
        kept = outputs.prepare_out_dir(out_dir, True, input_files(config, problems), preserve=(CHECKPOINTS,))
    else:
        kept = outputs.prepare_out_dir(out_dir, overwrite, input_files(config, problems))
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
        "restoring %d image(s) (%s) x %d seed(s) with %s (%d parameters) for %d steps on %s",
        len(problems), ", ".join("x".join(map(str, p.observation.shape)) for p in problems), config.seeds,
        config.net, models.num_params(net, code_shape(net, *first.output_shape[:2])), fcfg.num_iter,
        jax.default_backend(),
    )
    if grids:
        logging.info("in %d tile(s) of %dx%d pixels overlapping by %d", len(fitted), *first.output_shape[:2],
                     config.tile_overlap)
    groups = len({p.observation.shape for p in fitted})
    progress = Progress(fcfg.num_iter, config.log_every, segments=groups, first_step=resumed_from or 0)
    cleans = [p.clean for p in fitted]
    with interruptible() as interrupted:
        results = ensemble.fit_images(
            [p.observation for p in fitted], [p.operator for p in fitted] if grids else first.operator, net, fcfg,
            keys, input_config=code, input_image=first.code_image,
            cleans=None if any(c is None for c in cleans) else cleans, callback=progress, method=config.method,
            interrupted=interrupted, **resume_options,
        )
        jax.block_until_ready([r.finals for r in results if r is not None])
        if grids:
            results = untile(grids, results)
        signal_number = interrupted()
        # a signal from here on waits for the files to be written: the results are complete
        out = write_results(config, out_dir, problems, failures, results, net, progress, kept, fcfg, whole_history,
                            resumed_from, signal_number, save_checkpoint if meta is not None and not checkpoint_every
                            else None, grids)
    if signal_number:
        rows = out["images"] if config.images else [out]
        step = max((r.get("steps_run", 0) for r in rows), default=0)
        done = sum(not r.get("partial", False) for r in rows)
        how = ("the same command with --resume continues it" if meta is not None
               else f"{done} of {len(problems)} image(s) finished; rerun the others")
        raise Interrupted(f"interrupted by {signal.Signals(signal_number).name} at step {step} of {fcfg.num_iter}: "
                          f"the fit so far is saved in {out_dir} ({how})", signal_number)
    if failures:
        raise BatchIncomplete(f"{len(failures)} of {len(failures) + len(problems)} images could not be restored "
                              f"(listed in {os.path.join(out_dir, 'metrics.json')}): "
                              + "; ".join(f"{os.path.basename(p)}: {m}" for p, m in failures))
    return out


def write_results(config, out_dir, problems, failures, results, net, progress, kept, fcfg, whole_history,
                  resumed_from, signal_number, save_checkpoint, grids=None) -> dict:
    """Score each image and write its files (staged, then moved into place); the run's metrics.

    An image whose fit a signal cut short is marked partial, and its state checkpointed with
    `save_checkpoint` when given.
    """
    rows = []
    dirs = image_dirs(out_dir, problems, bool(config.images))
    for i, (problem, result, image_dir) in enumerate(zip(problems, results, dirs, strict=True)):
        if result is None:  # interrupted before its group started
            continue
        new_history = result.history  # this call's steps; the checkpoint adds them to the previous ones
        result = result.replace(history=whole_history(new_history))
        row = {**run_fields(config, net, problem, progress), "image": problem.name,
               "shape": list(problem.observation.shape)}
        if resumed_from is not None:
            row["resumed_from_step"] = resumed_from
        row.update(evaluate(problem.observation, problem.clean, result, problem.operator))
        if grids:
            row.update(tile=config.tile, tile_overlap=config.tile_overlap, tiles=len(grids[i]),
                       seam_ratio=tiles.seam_ratio(result.emas[0], grids[i]))
        finished = row.get("steps_run", fcfg.num_iter) >= fcfg.num_iter or bool(row.get("es_stopped"))
        if signal_number and not finished:
            row.update(partial=True, interrupted_by=signal.Signals(signal_number).name)
            if save_checkpoint is not None:
                save_checkpoint(result.state, new_history)
        staged = outputs.staging_dir(out_dir)
        write_image(staged, config, problem, result, row)
        if not config.images:
            outputs.write_run_files(staged, config)
        outputs.publish(staged, image_dir, out_dir, kept)
        rows.append(row)
    out = rows[0] if not config.images else {**run_fields(config, net, problems[0], progress), "images": rows}
    if config.images:
        out["failed"] = [{"image": path, "error": message} for path, message in failures]
        staged = outputs.staging_dir(out_dir)
        outputs.write_json(os.path.join(staged, "metrics.json"), out)
        outputs.write_run_files(staged, config)
        outputs.publish(staged, out_dir, out_dir, kept)
    outputs.finish_out_dir(out_dir, kept)
    for row in rows:
        logging.info("%s: %s", row["image"], json.dumps({k: row[k] for k in row if k.startswith(LOGGED_SCORES)}))
    return out
