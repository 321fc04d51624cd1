"""What `experiments/restore.py` does: a config -> the problems -> one fit -> scores -> files.

`run` is the one driver. Every run goes the same way: check the config, read every image
(`experiments.problems`), fit all seeds of all images (`dip_jax.ensemble`, K >= 1 seeds),
score each image (`dip_jax.evaluation.evaluate`) and write its files
(`experiments.outputs`). Checkpoints are steps of that path, as in flax's
examples/imagenet: with `checkpoint_every`, the fit's state is saved every that many steps,
and `resume` starts the same path from the newest saved state.
"""

from __future__ import annotations

import json
import os

import jax
import ml_collections
import numpy as np
from absl import logging

from dip_jax import checkpoint, ensemble, models
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


def write_image(image_dir: str, config, problem, result, row: dict) -> None:
    """Every file of one image: the images, history, plots and metrics.json."""
    os.makedirs(image_dir, exist_ok=True)
    ema = config.fit.ema_decay is not None
    outputs.write_images(image_dir, problem, result, ema=ema)
    if result.history:
        outputs.write_history(image_dir, result.history)
        title = f"{config.task}: {os.path.basename(problem.name)}"
        if "psnr_obs" in result.history:
            outputs.plot_history(os.path.join(image_dir, "psnr.png"), {k: v[0] for k, v in result.history.items()},
                                 title, row.get("es_iteration"))
        outputs.plot_loss(os.path.join(image_dir, "loss.png"), {"loss": result.history["loss"][0]}, title)
    outputs.plot_comparison(os.path.join(image_dir, "comparison.png"), problem, result, row,
                            restored="ema" if ema else "final")
    outputs.write_json(os.path.join(image_dir, "metrics.json"), row)


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
    and `out_dir/metrics.json` holds a row per image. With `checkpoint_every`, the fit's state
    (all seeds) is saved to `out_dir/checkpoints` every that many steps; `resume` continues
    from the newest one there (same config apart from num_iter and log_every), giving the
    same result as a run that never stopped. Checkpoints are for one image.
    """
    validate(config)
    config = resolve(config)
    if checkpoint_every < 0:
        raise ConfigError(f"checkpoint_every must be >= 0, got {checkpoint_every}")
    checkpointed = bool(checkpoint_every or resume)
    if checkpointed and config.images:
        raise ConfigError("checkpoints and --resume are for one image (any --seeds), not --images")
    fcfg = fit_config(config)
    obs_key, fit_key = jax.random.split(jax.random.key(config.seed))
    problems = load_problems(config, obs_key)
    first = problems[0]
    net = build_net(config, first)
    code = input_config(config, first)
    keys = ensemble.seed_keys(fit_key, config.seeds)

    checkpoint_dir = os.path.join(out_dir, CHECKPOINTS)
    meta = checkpoint_metadata(config, first, net) if checkpointed else None
    state, previous = None, {}
    if resume:  # checked before anything is written: a bad folder leaves every file as it was
        checkpoint.check(checkpoint_dir, meta)
        template = ensemble.initial_state(first.observation, first.operator, net, fcfg, keys, input_config=code,
                                          input_image=first.code_image)
        state, previous = checkpoint.restore(checkpoint_dir, template, meta)
        logging.info("resuming from step %d of %s", int(np.max(state.step)), checkpoint_dir)
    else:
        outputs.prepare_out_dir(out_dir, overwrite)
    resumed_from = None if state is None else int(np.max(state.step))

    def whole_history(history: dict) -> dict:
        if not previous or not history:
            return dict(history or previous)
        return {k: np.concatenate([previous[k], np.asarray(history[k])], axis=1) for k in previous}

    resume_options = {}
    if state is not None:
        resume_options["state"] = state
    if checkpoint_every:
        resume_options.update(checkpoint_every=checkpoint_every, checkpoint_fn=lambda s, h: checkpoint.save(
            checkpoint_dir, s, meta, whole_history(h)))

    logging.info(
        "restoring %d image(s) (%s) x %d seed(s) with %s (%d parameters) for %d steps on %s",
        len(problems), ", ".join("x".join(map(str, p.observation.shape)) for p in problems), config.seeds,
        config.net, models.num_params(net, code_shape(net, *first.output_shape[:2])), fcfg.num_iter,
        jax.default_backend(),
    )
    groups = len({p.observation.shape for p in problems})
    progress = Progress(fcfg.num_iter, config.log_every, segments=groups, first_step=resumed_from or 0)
    cleans = [p.clean for p in problems]
    results = ensemble.fit_images(
        [p.observation for p in problems], first.operator, net, fcfg, keys, input_config=code,
        input_image=first.code_image, cleans=None if any(c is None for c in cleans) else cleans,
        callback=progress, method=config.method, **resume_options,
    )
    jax.block_until_ready([r.finals for r in results])

    rows = []
    dirs = image_dirs(out_dir, problems, bool(config.images))
    for problem, result, image_dir in zip(problems, results, dirs, strict=True):
        result = result.replace(history=whole_history(result.history))
        row = {**run_fields(config, net, problem, progress), "image": problem.name,
               "shape": list(problem.observation.shape)}
        if resumed_from is not None:
            row["resumed_from_step"] = resumed_from
        row.update(evaluate(problem.observation, problem.clean, result, problem.operator))
        write_image(image_dir, config, problem, result, row)
        rows.append(row)
    out = rows[0] if not config.images else {**run_fields(config, net, first, progress), "images": rows}
    if config.images:
        outputs.write_json(os.path.join(out_dir, "metrics.json"), out)
    outputs.write_run_files(out_dir, config)
    for row in rows:
        logging.info("%s: %s", row["image"], json.dumps({k: row[k] for k in row if k.startswith(LOGGED_SCORES)}))
    return out
