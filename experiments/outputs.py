"""Writing a restoration's files: images, history, metrics, the config and environment, plots.

Nothing here computes a score (that is `dip_jax.evaluation`); every function writes what it
is given into one folder.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from typing import Optional

import jax
import numpy as np

import dip_jax
from dip_jax import io
from dip_jax.evaluation import base_operator, finite_or_none
from dip_jax.operators import Inpainting, SuperResolution

# Every run lists the files it wrote here, so that --overwrite removes exactly those and nothing else.
MANIFEST = ".dip_jax_outputs.json"


def _files_under(folder: str) -> set[str]:
    return {os.path.relpath(os.path.join(root, name), folder)
            for root, _, names in os.walk(folder) for name in names}


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


def check_out_dir(out_dir: str, inputs=()) -> None:
    """FileExistsError when `out_dir` is a file or holds one of the run's `inputs`: a run never writes there."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise FileExistsError(f"{out_dir} exists and is not a directory")
    for path in inputs:
        if path and _inside(path, out_dir):
            raise FileExistsError(f"--out_dir {out_dir} holds the input {path}: write the results to another folder")


def check_writable(out_dir: str, prefix: str = ".dip_jax_write_test-") -> None:
    """OSError now, rather than after hours of fitting, when nothing can be written into `out_dir`.

    The probe is a folder named `prefix...`, unique to this process.
    """
    try:
        os.rmdir(tempfile.mkdtemp(prefix=prefix, dir=out_dir))
    except OSError as e:
        raise OSError(f"cannot write into {out_dir}: {e.strerror}") from None


def read_manifest(folder: str) -> set[str]:
    """The files the run that wrote `folder` listed as its own (none when it has no manifest)."""
    try:
        with open(os.path.join(folder, MANIFEST)) as f:
            return set(json.load(f)["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def remove_files(folder: str, names) -> None:
    """Remove the files `names` (relative to `folder`) and the folders that leaves empty, nothing else."""
    parents = set()
    for name in names:
        path = os.path.join(folder, name)
        if os.path.isfile(path) or os.path.islink(path):
            os.remove(path)
        parent = os.path.dirname(name)
        while parent:
            parents.add(parent)
            parent = os.path.dirname(parent)
    for parent in sorted(parents, key=len, reverse=True):
        path = os.path.join(folder, parent)
        if os.path.isdir(path) and not os.listdir(path):
            os.rmdir(path)


def clear_folder(folder: str, listed=()) -> set[str]:
    """Remove what an earlier run wrote in `folder` (its manifest's files, or `listed` when it has none),
    and `folder` itself when that empties it; returns the files left (someone else's), relative to it."""
    ours = read_manifest(folder) or set(listed)
    remove_files(folder, ours | {MANIFEST})
    left = _files_under(folder)
    if not left:
        shutil.rmtree(folder, ignore_errors=True)  # empty folders only
    return left


def prepare_out_dir(out_dir: str, overwrite: bool, inputs=(), preserve=()) -> set[str]:
    """Make `out_dir` ready for a run; returns the files it holds that this run must leave alone.

    A non-empty folder is refused unless `overwrite`; with it, the files the previous run wrote (its
    manifest) are removed and every other file is kept. An input file inside `out_dir` is refused
    either way: a run never writes where its inputs are. The folder must be writable, checked now
    rather than after hours of fitting. Files of the previous run under a `preserve` folder (the
    checkpoints a resumed run continues from) stay, and count as this run's.
    """
    check_out_dir(out_dir, inputs)
    kept = set()
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        if not overwrite:
            raise FileExistsError(f"{out_dir} is not empty; pass --overwrite to write into it")
        ours = {name for name in _files_under(out_dir) if name.split(os.sep)[0] in preserve}
        remove_files(out_dir, read_manifest(out_dir) - ours)
        for name in os.listdir(out_dir):  # the staging folders of a run killed while writing
            if name.startswith(".staging-") and os.path.isdir(os.path.join(out_dir, name)):
                shutil.rmtree(os.path.join(out_dir, name))
        kept = _files_under(out_dir) - {MANIFEST} - ours
    os.makedirs(out_dir, exist_ok=True)
    check_writable(out_dir)
    return kept


def finish_out_dir(out_dir: str, kept: set[str]) -> list[str]:
    """Write the manifest: every file under `out_dir` but those `prepare_out_dir` kept; returns the list."""
    files = sorted(_files_under(out_dir) - kept - {MANIFEST})
    with open(os.path.join(out_dir, MANIFEST), "w") as f:
        json.dump({"files": files}, f, indent=1)
    return files


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def staging_dir(out_dir: str, prefix: str = ".staging-") -> str:
    """A fresh folder inside `out_dir` to write one image's files into before `publish` moves them.

    Its permissions are a plain folder's (tempfile makes it private), as it becomes the image's folder.
    """
    path = tempfile.mkdtemp(prefix=prefix, dir=out_dir)
    os.chmod(path, 0o777 & ~_umask())
    return path


# Moved last when files go one by one: an image folder whose metrics.json is there is complete.
LAST = (MANIFEST, "metrics.json")


def publish(staged: str, dest: str, out_dir: str, kept: set[str], manifest: bool = False) -> None:
    """Move the files written in `staged` to `dest` (a folder under `out_dir`), then remove `staged`.

    When `dest` does not exist yet the folder is renamed whole, so the image's results appear at
    once or not at all; otherwise the files move one by one, metrics.json last. With `manifest`,
    the folder gets its own list of the files (`MANIFEST`), so a later run knows which are its
    own without the top-level list. A file that would replace one of `kept` (not written by a
    dip-jax run) is a FileExistsError before anything moves.
    """
    names = _files_under(staged)
    prefix = os.path.relpath(dest, out_dir)
    clash = sorted(n for n in names if os.path.normpath(os.path.join(prefix, n)) in kept)
    if clash:
        raise FileExistsError(f"{os.path.join(dest, clash[0])} exists and was not written by a dip-jax run: "
                              "move it away or choose another --out_dir")
    if manifest:
        with open(os.path.join(staged, MANIFEST), "w") as f:
            json.dump({"files": sorted(names)}, f, indent=1)
        names.add(MANIFEST)
    if not os.path.exists(dest):
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
        os.rename(staged, dest)
        return
    for name in sorted(names, key=lambda n: (n in LAST, LAST.index(n) if n in LAST else 0, n)):
        target = os.path.join(dest, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.replace(os.path.join(staged, name), target)
    shutil.rmtree(staged)


def write_json_atomic(path: str, value) -> None:
    """`write_json`, to a temporary name then renamed: a reader (or a crash) sees the old file or the new, whole."""
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        write_json(tmp, value)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json(path: str, value) -> None:
    """Valid JSON only: values that are not finite are written as null."""
    with open(path, "w") as f:
        json.dump(finite_or_none(value), f, indent=2, allow_nan=False)


def write_images(out_dir: str, problem, result, ema: bool = True) -> list[str]:
    """The observation, each output of seed 0 (the single run), the task's extras and, for K > 1, every seed's.

    `result` is an `ensemble.SeedsResult`; `ema` says whether the fit averaged its outputs. An
    image with values that are not finite (a diverged fit) is not written: its name is returned.
    """
    not_written = []

    def save(name, image):
        if not np.all(np.isfinite(np.asarray(image))):
            not_written.append(name)
            return
        io.save_image(os.path.join(out_dir, name), image)

    if problem.operator.observed:  # not a placeholder canvas
        save("observation.png", problem.observation)
    save("final.png", result.finals[0])
    save("ema.png", result.emas[0])
    if problem.clean is not None:
        save("clean.png", problem.clean)
    base = base_operator(problem.operator)
    if isinstance(base, SuperResolution):
        save("baseline.png", base.baseline(problem.observation))
    if isinstance(base, Inpainting):
        save("mask.png", base.mask)
    if problem.code_image is not None:
        save("flash.png", problem.code_image)
    k = int(result.finals.shape[0])
    if k > 1:
        save("mean.png", result.mean)
        std = np.asarray(result.std)
        save("uncertainty.png", std / (float(std.max()) or 1.0))  # 1 = the largest std
        np.save(os.path.join(out_dir, "uncertainty.npy"), std)
        for i in range(k):
            save(f"seed{i}_final.png", result.finals[i])
            save(f"seed{i}_ema.png", result.emas[i])
    stops = getattr(result.state, "stopping", None)
    if stops is not None and int(stops.iteration[0]):  # seed 0's detection, as the single run's
        save("es.png", stops.output[0])
        if ema:
            save("es_ema.png", stops.average[0])
    return not_written


def write_history(out_dir: str, history: dict) -> None:
    """history.npz: every step's metrics, (T,) for one seed and (K, T) for several."""
    k = next(iter(history.values())).shape[0] if history else 1
    np.savez_compressed(os.path.join(out_dir, "history.npz"),
                        **{name: (v[0] if k == 1 else v) for name, v in history.items()})


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_loss(path: str, curves: dict, title: str, log_x: bool = False) -> None:
    """Loss against iteration, one line per entry of `curves` (name -> (T,)); a log scale where all are positive."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, loss in curves.items():
        loss = np.asarray(loss)
        ax.plot(np.arange(1, len(loss) + 1), loss, label=name, lw=1)
    values = np.concatenate([np.asarray(v).ravel() for v in curves.values()])
    values = values[np.isfinite(values)]
    if values.size and values.min() > 0:
        ax.set_yscale("log")
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_history(path: str, history: dict, title: str, es_iteration: Optional[int] = None) -> None:
    """PSNR against iteration of one fit (`history` of one seed: name -> (T,))."""
    plt = _pyplot()
    steps = np.arange(1, len(history["loss"]) + 1)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, history["psnr_obs"], label="output vs observation", lw=1)
    if "psnr_clean" in history:
        ax.plot(steps, history["psnr_clean"], label="output vs clean", lw=1)
        ax.plot(steps, history["psnr_ema_clean"], label="averaged output vs clean", lw=1.5)
    if es_iteration:
        ax.axvline(es_iteration, color="k", ls="--", lw=1, label=f"early stop (iteration {es_iteration})")
    ax.set_xlabel("iteration")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _title(name: str, scores: dict, key: str) -> str:
    value = scores.get(key)
    return name if value is None else f"{name}\n{value:.2f} dB"


def task_caption(scores: dict, which: str = "final") -> str:
    """One line of an operator's own scores (`evaluate`'s `<name>_<which>`) for a figure title; '' if none.

    Activation maximisation: the target class's probability and rank (or the driven channel's
    value); feature inversion: the feature distance and the PSNR to the original.
    """
    get = lambda name: scores.get(f"{name}_{which}")  # noqa: E731
    parts = []
    if get("target_probability") is not None:
        parts.append(f"p({scores.get('class_name', 'target')}) {get('target_probability'):.3f}, "
                     f"rank {int(get('target_rank'))}, logit {get('unit_value'):.1f}")
    elif get("unit_value") is not None:
        parts.append(f"channel {scores.get('unit', '')} sum {get('unit_value'):.4g}")
    if get("feature_distance") is not None:
        parts.append(f"feature distance {get('feature_distance'):.3f}, {get('psnr_original'):.2f} dB")
    return "; ".join(parts)


def plot_comparison(path: str, problem, result, scores: dict, restored: str = "ema") -> None:
    """comparison.png: observation | restored | clean (when known) | uncertainty (K > 1), PSNRs in the titles.

    No observation panel where the operator has none (activation maximisation); the
    operator's own scores (`task_caption`) go under the restored image's title.

    `restored` names the output shown as restored: 'ema' or 'final', or 'es_ema' / 'es' (the
    average / output kept at the early-stopping detection, for a fit that stopped by itself);
    `scores` are `evaluation.evaluate`'s numbers, whose PSNRs against the clean image go into the titles.
    """
    k = int(result.finals.shape[0])
    stop = getattr(result.state, "stopping", None)
    image, what, score = {
        "ema": lambda: (result.emas[0], "average", "psnr_ema"),
        "final": lambda: (result.finals[0], "last output", "psnr_final"),
        "es_ema": lambda: (stop.average[0], f"average at step {scores.get('es_iteration')}", "psnr_ema_es"),
        "es": lambda: (stop.output[0], f"output at step {scores.get('es_iteration')}", "psnr_es"),
    }[restored]()
    title = _title(f"restored ({what})", scores, score)
    caption = (task_caption(scores, restored) if restored in ("ema", "final") else None) or task_caption(scores)
    panels = [(title + (f"\n{caption}" if caption else ""), image)]
    if problem.operator.observed:
        panels.insert(0, (_title("observation", scores, "psnr_input"), problem.observation))
    if k > 1:
        panels.append((_title(f"mean of {k} seeds", scores, "psnr_mean_image"), result.mean))
    if problem.clean is not None:
        panels.append(("clean", problem.clean))
    if k > 1:
        std = np.asarray(result.std).mean(axis=-1)
        panels.append((f"uncertainty (std over seeds, max {float(std.max()):.3f})", std))
    plot_panels(path, panels)


def plot_panels(path: str, panels: list) -> None:
    """One row of images with their titles: [(title, image)]; an HWC image in [0, 1] (clipped), or a 2-D map."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6))
    for ax, (title, panel) in zip(np.atleast_1d(axes), panels, strict=True):
        panel = np.asarray(panel)
        if panel.ndim == 2:
            ax.imshow(panel, cmap="magma")
        else:
            ax.imshow(np.clip(panel[..., 0] if panel.shape[-1] == 1 else panel, 0, 1),
                      cmap="gray" if panel.shape[-1] == 1 else None, vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _git_revision() -> Optional[str]:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment() -> dict:
    import flax
    import optax

    return {
        "dip_jax": dip_jax.__version__,
        "jax": jax.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
        "orbax_checkpoint": importlib.metadata.version("orbax-checkpoint"),
        "python": sys.version.split()[0],
        "host": socket.gethostname(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "git_revision": _git_revision(),
    }


def write_run_files(out_dir: str, config, with_environment: bool = True) -> None:
    """config.json (the resolved config) and environment.json beside the results."""
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        f.write(config.to_json_best_effort(indent=2))
    if with_environment:
        write_json(os.path.join(out_dir, "environment.json"), environment())
