"""A folder of images restored by several processes into one `--out_dir`, with nothing lost when one dies.

Each process restores a *share* of the folder (`Shard`: its index and the number of shares),
chosen by `partition` from nothing but the file names and sizes, so every process computes the
same split without talking to the others. Processes never write the same file:

- an image's files are written into a staging folder of the process (`staging_prefix`) and
  appear in `out_dir/<name>/` by one rename, its file list (`outputs.MANIFEST`) and metrics.json
  inside; a process killed at any moment leaves each image finished or absent (`finished_row`);
- a process that has finished its share writes a *marker*, `out_dir/.dip_jax_shards/<i>-of-<N>.json`
  (atomically), naming the run (`fingerprint`), every image and its failures;
- a process that finds every marker of the run present after writing its own is among the last;
  the one of those that creates the run's claim file first (`claim_summary`, an exclusive
  create) writes the folder's summary (metrics.json, the manifest, ...), each file under a
  temporary name and then renamed, so a reader sees the old version or the new, whole.

`--resume` skips the images whose folders are finished and redoes the rest; `--overwrite`
removes the files an earlier run wrote in this process's images' folders (their manifests say
which) and leaves every other file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from typing import Optional, Sequence

from experiments import outputs

SHARDS_DIR = ".dip_jax_shards"


@dataclasses.dataclass(frozen=True)
class Shard:
    """Share `index` of `count` (0 <= index < count)."""

    index: int = 0
    count: int = 1

    def __post_init__(self):
        if not (self.count >= 1 and 0 <= self.index < self.count):
            raise ValueError(f"a shard is i/N with 0 <= i < N, got {self.index}/{self.count}")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str, environ=os.environ) -> Shard:
    """`i/N`, or `slurm`: the share of this task of a Slurm job array (`sbatch --array`)."""
    if text == "slurm":
        return slurm_array_shard(environ)
    index, sep, count = text.partition("/")
    try:
        if not sep:
            raise ValueError
        return Shard(int(index), int(count))
    except ValueError as e:
        raise ValueError(f"--shard takes i/N (0 <= i < N) or slurm, got {text!r}"
                         + (f": {e}" if str(e) else "")) from None


def slurm_array_shard(environ=os.environ) -> Shard:
    """This array task's share: its position among the array's task ids (`--array=0-7`, `1-8` or `0-14:2`)."""
    try:
        task, count = int(environ["SLURM_ARRAY_TASK_ID"]), int(environ["SLURM_ARRAY_TASK_COUNT"])
        first = int(environ.get("SLURM_ARRAY_TASK_MIN", 0))
        step = int(environ.get("SLURM_ARRAY_TASK_STEP", 1)) or 1
    except (KeyError, ValueError):
        raise ValueError("--shard=slurm needs a Slurm job array (SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT "
                         "are not set; start it with sbatch --array=0-N)") from None
    return Shard((task - first) // step, count)


def current_shard(flag: str = "") -> Shard:
    """The share of this process: `--shard` when given, else jax.distributed's process index and count."""
    if flag:
        return parse_shard(flag)
    import jax

    return Shard(jax.process_index(), jax.process_count())


def initialize_distributed(coordinator_address: Optional[str] = None, num_processes: Optional[int] = None,
                           process_id: Optional[int] = None) -> None:
    """`jax.distributed.initialize` (arguments left None are found from Slurm, Open MPI or a TPU pod), with
    CPU collectives (gloo) where this jax has them off, so that CPU-only processes can share a mesh."""
    import jax

    if jax.config.values.get("jax_cpu_collectives_implementation", "gloo") == "none":
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address, num_processes, process_id)


def distributed_shard(coordinator_address: Optional[str] = None, num_processes: Optional[int] = None,
                      process_id: Optional[int] = None) -> Shard:
    """This process's share from jax.distributed (`initialize_distributed`'s arguments), which is then left.

    A folder's shares need no collective, and a runtime still joined would end every process
    when one dies (the survivors abort once its heartbeats stop), losing their images in flight;
    left at once, while every process is alive, it only tells each process its place. The place
    is read before JAX starts its backend, which then starts as a single process's.
    """
    import jax
    from jax._src import distributed  # the index and count without starting a backend tied to the others

    initialize_distributed(coordinator_address, num_processes, process_id)
    shard = Shard(distributed.global_state.process_id, distributed.global_state.num_processes)
    jax.distributed.shutdown()
    return shard


def image_size(path: str, crop: Sequence[int] = (0, 0)) -> Optional[tuple[int, int]]:
    """(height, width) of an image file as it will be restored (turned by its EXIF orientation, centre
    cropped to `crop` where a side is non-zero), read from its header; None when it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
            if image.getexif().get(0x0112) in (5, 6, 7, 8):  # a quarter turn: a viewer shows it on its side
                width, height = height, width
    except Exception:  # noqa: BLE001 - any unreadable file: its own process reports why
        return None
    crop_h, crop_w = crop
    return (min(height, crop_h) if crop_h else height, min(width, crop_w) if crop_w else width)


def partition(sizes: Sequence[Optional[tuple[int, int]]], count: int) -> list[int]:
    """The share (0..count-1) of each image, from its (height, width) (None: unreadable).

    The images are ordered by size, then by their position, and cut into `count` runs of
    consecutive images with about equal pixel counts (image j goes to the share its middle pixel
    falls in), so no share's pixels differ from an equal share by more than the largest image's, and images of one
    size stay together: a share compiles for few sizes. The same sizes give the same shares.
    """
    pixels = [1 if s is None else max(1, s[0] * s[1]) for s in sizes]  # an unreadable file weighs nothing
    order = sorted(range(len(sizes)), key=lambda j: (sizes[j] or (0, 0), j))
    total = sum(pixels)
    shares, before = [0] * len(sizes), 0
    for j in order:
        shares[j] = min(count - 1, int((before + pixels[j] / 2) * count / total))
        before += pixels[j]
    return shares


def fingerprint(config: dict, names: Sequence[str], count: int) -> str:
    """What makes the processes one run: the config, the images and the number of shares."""
    text = json.dumps({"config": config, "images": list(names), "count": count}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def staging_prefix(shard: Shard) -> str:
    """The names of this shard's staging folders (another shard's are left alone)."""
    return f".staging-{shard.index}of{shard.count}-"


def marker_path(out_dir: str, shard: Shard) -> str:
    return os.path.join(out_dir, SHARDS_DIR, f"{shard.index}-of-{shard.count}.json")


def write_marker(out_dir: str, shard: Shard, marker: dict) -> None:
    """Say that this shard has finished its share (atomically: the marker is whole or absent)."""
    os.makedirs(os.path.join(out_dir, SHARDS_DIR), exist_ok=True)
    outputs.write_json_atomic(marker_path(out_dir, shard), {"shard": shard.index, "count": shard.count, **marker})


def claim_path(out_dir: str, run: str) -> str:
    return os.path.join(out_dir, SHARDS_DIR, f"summary-{run}.claim")


def claim_summary(out_dir: str, run: str) -> bool:
    """True for the one process that gets to write the summary of the run `run` (its first caller)."""
    try:
        os.close(os.open(claim_path(out_dir, run), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


def read_markers(out_dir: str) -> list[dict]:
    """Every marker in `out_dir` that reads whole, newest first."""
    folder = os.path.join(out_dir, SHARDS_DIR)
    if not os.path.isdir(folder):
        return []
    found = []
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if not name.endswith(".json"):
            continue
        try:
            with open(path) as f:
                found.append((os.path.getmtime(path), json.load(f)))
        except (OSError, ValueError):
            continue
    return [m for _, m in sorted(found, key=lambda t: -t[0])]


def run_markers(out_dir: str, count: int, run: str) -> list[dict]:
    """The markers of the run `run` (a fingerprint), one per finished shard, by shard."""
    markers = {m["shard"]: m for m in read_markers(out_dir) if m.get("fingerprint") == run and m["count"] == count}
    return [markers[i] for i in sorted(markers)]


def finished_row(folder: str) -> Optional[dict]:
    """An image folder's metrics.json when the image is finished (published, not `partial`), else None."""
    try:
        with open(os.path.join(folder, "metrics.json")) as f:
            row = json.load(f)
    except (OSError, ValueError):
        return None
    return None if row.get("partial") else row


def prepare(out_dir: str, names: Sequence[str], owners: Sequence[int], shard: Shard, *, overwrite: bool,
            resume: bool, finished: set = frozenset(), inputs: Sequence[str] = (),
            summary_files: Sequence[str] = ()) -> set[str]:
    """Make `out_dir` ready for this shard's images (`names[j]` for `owners[j] == shard.index`); returns
    the files there that this shard must not replace (someone else's, in its images' folders).

    Without `overwrite` or `resume`, `out_dir` may hold only what the other shards of the run
    write (their images' folders, their staging folders, the markers); anything else, or a
    folder of this shard's images, is a FileExistsError. With either, the folders of this
    shard's images but the `finished` ones (kept by `resume`) are cleared: the files an earlier
    run listed there (the folder's own manifest, or the old top-level one) are removed, and no
    other file. Shard 0 also clears, with `overwrite`, the earlier run's top-level files and the
    folders of images no longer in the folder.
    """
    outputs.check_out_dir(out_dir, inputs)
    mine = [n for n, o in zip(names, owners, strict=True) if o == shard.index]
    others = {n for n, o in zip(names, owners, strict=True) if o != shard.index}
    own_staging = staging_prefix(shard)
    kept = set()
    entries = os.listdir(out_dir) if os.path.isdir(out_dir) else []
    previous = outputs.read_manifest(out_dir)

    def another_shards(entry: str) -> bool:
        staging = entry.startswith(".staging-") and not entry.startswith(own_staging)
        return entry in others or entry == SHARDS_DIR or (staging and shard.count > 1)

    if entries and not (overwrite or resume):
        blocking = sorted(e for e in entries if not another_shards(e))
        if blocking:
            raise FileExistsError(f"{out_dir} is not empty ({blocking[0]}"
                                  + (f" and {len(blocking) - 1} more" if len(blocking) > 1 else "")
                                  + "); pass --resume to finish the images not done there, or --overwrite")
    elif entries:
        for name in summary_files:
            if os.path.exists(os.path.join(out_dir, name)) and name not in previous:
                raise FileExistsError(f"{os.path.join(out_dir, name)} exists and was not written by a dip-jax "
                                      "run: move it away or choose another --out_dir")
        for name in mine:
            folder = os.path.join(out_dir, name)
            if name in finished or not os.path.isdir(folder):
                continue
            listed = {p[len(name) + 1:] for p in previous if p.startswith(name + os.sep)}
            kept |= {os.path.join(name, f) for f in outputs.clear_folder(folder, listed)}
        for entry in entries:  # the staging folders of this shard's earlier process, killed while writing
            if entry.startswith(own_staging) or (shard.count == 1 and entry.startswith(".staging-")):
                shutil.rmtree(os.path.join(out_dir, entry), ignore_errors=True)
        if os.path.exists(marker_path(out_dir, shard)):
            os.remove(marker_path(out_dir, shard))
        claims = os.path.join(out_dir, SHARDS_DIR)
        for name in os.listdir(claims) if os.path.isdir(claims) else []:  # the run finishing this one claims anew
            if name.endswith(".claim"):
                os.remove(os.path.join(claims, name))
        if shard.index == 0 and overwrite and not resume:
            ours = set(names) | {SHARDS_DIR}
            outputs.remove_files(out_dir, {p for p in previous if p.split(os.sep)[0] not in ours})
    os.makedirs(out_dir, exist_ok=True)
    outputs.check_writable(out_dir, own_staging)
    return kept


def check_same_config(folder: str, config: dict) -> None:
    """ValueError naming what differs when a finished image's config.json is not `config` (log_every aside)."""
    from dip_jax.checkpoint import differences

    try:
        with open(os.path.join(folder, "config.json")) as f:
            found = json.load(f)
    except (OSError, ValueError):
        return  # written before images kept their config: nothing to compare
    found, expected = dict(found), dict(config)
    found.pop("log_every", None)
    expected.pop("log_every", None)
    diff = differences(found, expected, where="there")
    if diff:
        raise ValueError(f"--resume: {folder} was restored with another config ({'; '.join(diff[:3])}"
                         + (f" and {len(diff) - 3} more" if len(diff) > 3 else "")
                         + "); resume with the same settings, or --overwrite")
