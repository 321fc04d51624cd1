r"""Restore an image with Deep Image Prior.

    python -m experiments.restore --config=experiments/configs/quick.py --out_dir=/tmp/dip_quick
    python -m experiments.restore --config=experiments/configs/denoise_f16.py \
        --image=../shared/data/denoising/F16_GT.png --out_dir=/tmp/dip_f16
    python -m experiments.restore --task=sr --factor=4 --observation=my_low_res_photo.png --out_dir=/tmp/dip_sr

Flags override the config; any config field can also be set as --config.<field>=value.
`--config=quick` (a name, not a path) picks a config shipped in experiments/configs, so the
installed command `dip-restore --config=quick --out_dir=...` works from any folder.
"""

import os
import sys

from absl import app, flags
from ml_collections import config_flags

from experiments import shard_flags

_CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
_DEFAULT_CONFIG = os.path.join(_CONFIG_DIR, "denoise_f16.py")

_CONFIG = config_flags.DEFINE_config_file("config", _DEFAULT_CONFIG, "An ml_collections config file.")
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Folder for the outputs (must be empty unless --overwrite).")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Write into a non-empty --out_dir.")
_TASK = flags.DEFINE_string(
    "task", None, "Restoration task (overrides config.task): denoise, inpaint, sr, jpeg, flash, deblur."
)
_IMAGE = flags.DEFINE_string(
    "image", None, "A clean image that the task's operator corrupts; none: a crop of skimage.data.astronaut()."
)
_OBSERVATION = flags.DEFINE_string(
    "observation", None, "A degraded image as you have it (noisy, low-resolution, damaged): nothing is simulated."
)
_CLEAN = flags.DEFINE_string("clean", None, "Optional clean image to score the restoration of --observation.")
_MASK = flags.DEFINE_string(
    "mask", None, "inpaint: a mask file (white = known, black = missing), or bernoulli, text or box (generated)."
)
_FACTOR = flags.DEFINE_integer("factor", None, "sr: the upsampling factor (2, 4 or 8 in the paper).")
_JPEG_QUALITY = flags.DEFINE_integer("jpeg_quality", None, "jpeg: the quality used to simulate the JPEG.")
_FLASH = flags.DEFINE_string("flash", None, "flash: the flash photo (the net's input); the image is the no-flash one.")
_SIGMA = flags.DEFINE_float("sigma", None, "Noise std on the [0, 255] scale.")
_NUM_ITER = flags.DEFINE_integer("num_iter", None, "Optimisation steps.")
_LR = flags.DEFINE_float("lr", None, "Adam learning rate.")
_SEED = flags.DEFINE_integer("seed", None, "PRNG seed: noise, code, initialisation and perturbations.")
_SEEDS = flags.DEFINE_integer("seeds", None, "Seeds fitted together; writes their mean and an uncertainty map.")
_IMAGES = flags.DEFINE_string("images", None, "A folder: restore every image in it (one subfolder each).")
_NET = flags.DEFINE_string("net", None, "Network name from dip_jax.models.names() (overrides config.net).")
_EARLY_STOPPING = flags.DEFINE_enum(
    "early_stopping", None, ["auto", "none", "wmv", "emv"],
    "Early-stopping rule (ES-WMV, ES-EMV); auto: stop by itself on a real observation; see README."
)
_TILE = flags.DEFINE_integer("tile", None, "Restore in overlapping tiles of this many pixels a side (0: whole).")
_TILE_OVERLAP = flags.DEFINE_integer("tile_overlap", None, "Pixels by which neighbouring tiles overlap.")
_CHECKPOINT_EVERY = flags.DEFINE_integer("checkpoint_every", 0, "Save the fit's state every N steps (0: never).")
_RESUME = flags.DEFINE_bool(
    "resume", False, "Continue the run in --out_dir: from its newest checkpoint (one image), or, with --images, "
    "restoring only the images not finished there.")
_PROCESSES = shard_flags.define_flags()  # --shard, --distributed and where to find the other processes
flags.mark_flag_as_required("out_dir")


def shipped_config(argv):
    """`--config=NAME[:variant]` names a config shipped in experiments/configs when NAME is not a file."""
    out = []
    for arg in argv:
        if arg.startswith("--config="):
            value = arg[len("--config="):]
            path, _, variant = value.partition(":")
            shipped = os.path.join(_CONFIG_DIR, path if path.endswith(".py") else f"{path}.py")
            if os.sep not in path and not os.path.exists(path) and os.path.isfile(shipped):
                arg = "--config=" + shipped + (f":{variant}" if variant else "")
        out.append(arg)
    return out


def parse_flags(argv):
    """absl's flag parsing, with every bad flag, config file or config override reported in one line."""
    from experiments.configs import config_file_error

    argv = shipped_config(argv)
    for arg in argv:
        if arg.startswith("--config=") and (error := config_file_error(arg[len("--config="):])):
            sys.exit(f"restore: error: {error}")
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        sys.exit(f"restore: error: {e} (pass --helpshort to list the flags)")
    except (AttributeError, KeyError, TypeError, ValueError) as e:  # config overrides of unknown keys
        sys.exit(f"restore: error: bad config override: {e}")
    except (OSError, SyntaxError) as e:  # a config file absl could not load
        sys.exit(f"restore: error: cannot load the config: {str(e).splitlines()[0]}")


def config_from_flags(config=None):
    """The config file's config (or `config`) with the flags' overrides applied."""
    config = _CONFIG.value if config is None else config
    overrides = (
        ("task", _TASK), ("image", _IMAGE), ("sigma", _SIGMA), ("seed", _SEED), ("seeds", _SEEDS), ("images", _IMAGES),
        ("net", _NET), ("observation", _OBSERVATION), ("clean", _CLEAN), ("mask", _MASK), ("factor", _FACTOR),
        ("jpeg_quality", _JPEG_QUALITY), ("flash", _FLASH), ("tile", _TILE), ("tile_overlap", _TILE_OVERLAP),
    )
    for field, flag in overrides:
        if flag.value is not None:
            config[field] = flag.value
    for field, flag in (("num_iter", _NUM_ITER), ("lr", _LR), ("early_stopping", _EARLY_STOPPING)):
        if flag.value is not None:
            config.fit[field] = flag.value
    return config


def main(argv):
    # `restore summarize --out_dir=DIR`: only the summary of the folder run there, from the images finished
    # (after a share that will not finish, or to look at a run still going)
    summarize = argv[1:] == ["summarize"]
    if len(argv) > 1 and not summarize:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])} (the one command is: summarize)")
    import dip_jax

    dip_jax.configure_xla()  # the library's XLA defaults, before JAX starts
    # Imported here so that --help stays fast and flag errors come before JAX starts.
    from experiments import progress, restore_lib
    from experiments.problems import TASK_FLAGS, check_task_flags

    progress.quiet_orbax()
    try:
        if summarize:
            summary = restore_lib.summarize(_OUT_DIR.value)
            print(f"restore: {len(summary['images'])} image(s) in {_OUT_DIR.value}/metrics.json"
                  + "".join(f", {len(summary[k])} {k.replace('_', ' ')}" for k in ("failed", "unfinished",
                                                                                  "shards_missing") if summary.get(k)))
            return
        config = config_from_flags()
        check_task_flags(config.task, [name for name in TASK_FLAGS if flags.FLAGS[name].present])
        shard = shard_flags.shard_from_flags(_PROCESSES, folder=bool(config.images))
        restore_lib.run(config, _OUT_DIR.value, _OVERWRITE.value, checkpoint_every=_CHECKPOINT_EVERY.value,
                        resume=_RESUME.value, shard=shard)
    except restore_lib.Interrupted as e:  # the fit so far is saved: say how to go on
        print(f"restore: {e}", file=sys.stderr)
        sys.exit(128 + e.signal)
    except KeyboardInterrupt:  # before the fit started, or asked twice
        print("restore: interrupted", file=sys.stderr)
        sys.exit(130)
    except (ValueError, OSError, MemoryError, restore_lib.BatchIncomplete) as e:  # one line, no traceback
        sys.exit(f"restore: error: {e}")


def console_main():
    """The `dip-restore` command installed by pip."""
    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    console_main()
