r"""The paper's evaluation protocols (REFERENCE §4.3, §5) on a folder of images, with its numbers beside ours.

    python -m benchmarks.quality --protocol=sr --factor=4 --images=path/to/hr_images --out_dir=/tmp/q_sr
    python -m benchmarks.quality --protocol=denoise --sigma=25 --images=path/to/clean --out_dir=/tmp/q_dn
    python -m benchmarks.quality --protocol=inpaint --images=path/to/gray --out_dir=/tmp/q_in

Per image: out_dir/<stem>/restored.png (and the restore CLI's outputs) and a line of
out_dir/results.jsonl, written as soon as the image is done; `--resume` continues an
interrupted run. At the end a markdown table (printed, and out_dir/results.md) of each image's
score, the paper's where the image's name is in REFERENCE §5, and the difference, and
out_dir/report.html: the table, each image's crops side by side (with the paper's published
image from `--paper_dir` when given) and its PSNR curve, in one file that opens offline.
`--num_iter`, `--seeds`, `--max_images`, `--max_size` and `--net_config` make quick runs; the
table then says REDUCED SETTINGS. See benchmarks/quality_lib.py for the protocols.
"""

import sys

from absl import app, flags
from ml_collections import config_flags

from experiments import shard_flags

_PROTOCOL = flags.DEFINE_string("protocol", None, "sr, denoise or inpaint.")
_IMAGES = flags.DEFINE_string("images", None, "Folder of clean images (high-resolution ones for sr).")
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Folder for the results (must be empty unless --resume).")
_FACTOR = flags.DEFINE_integer("factor", 4, "sr: the upsampling factor, 4 or 8.")
_SIGMA = flags.DEFINE_float("sigma", 25.0, "denoise: the noise std on the [0, 255] scale (the paper: 25, 50).")
_NUM_ITER = flags.DEFINE_integer("num_iter", None, "Steps per image; default: the paper's.")
_SEEDS = flags.DEFINE_integer("seeds", 1, "Runs per image, their outputs averaged (denoise: the paper's 2).")
_SEED = flags.DEFINE_integer("seed", 0, "PRNG seed of the noise, masks, codes and fits.")
_MAX_IMAGES = flags.DEFINE_integer("max_images", 0, "Restore only the first N images (0: all).")
_MAX_SIZE = flags.DEFINE_integer("max_size", 0, "Skip images whose longer side exceeds this (0: no limit).")
_RESUME = flags.DEFINE_bool("resume", False, "Continue the run in --out_dir, skipping the images it has done.")
_LR_DIR = flags.DEFINE_string("lr_dir", "", "sr: folder of given low-resolution images, matched by file stem.")
_NOISY_DIR = flags.DEFINE_string("noisy_dir", "", "denoise: folder of given noisy images, matched by file stem.")
_MASKED_DIR = flags.DEFINE_string("masked_dir", "", "inpaint: folder of given masked images (0 = missing), by stem.")
_MASK_DIR = flags.DEFINE_string(
    "mask_dir", "", "inpaint: folder of the masks (white = known) of the --masked_dir images, by stem; without "
    "it the zero pixels of a masked image are taken as missing.")
_PAPER_DIR = flags.DEFINE_string(
    "paper_dir", "", "Folder of the paper's published restored images, shown beside ours in report.html (by stem).")
_NET_CONFIG = config_flags.DEFINE_config_file(
    "net_config",
    None,
    "A restore config whose net, net_overrides and input replace the paper's net (e.g. "
    "experiments/configs/quick.py); its fields can be overridden as --net_config.<field>=value.",
)
_PROCESSES = shard_flags.define_flags()  # --shard, --distributed and where to find the other processes
flags.mark_flags_as_required(["out_dir"])


def parse_flags(argv):
    """absl's flag parsing, with a bad flag or --net_config file reported in one line."""
    from experiments.configs import config_file_error

    for arg in argv:
        if arg.startswith("--net_config=") and (error := config_file_error(arg[len("--net_config="):])):
            sys.exit(f"quality: error: {error}")
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        sys.exit(f"quality: error: {e} (pass --helpshort to list the flags)")
    except (AttributeError, KeyError, TypeError, ValueError, OSError, SyntaxError) as e:
        sys.exit(f"quality: error: bad --net_config: {str(e).splitlines()[0]}")


def main(argv):
    # `quality summarize --out_dir=DIR`: only the table and report, from the images finished there
    summarize = argv[1:] == ["summarize"]
    if len(argv) > 1 and not summarize:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])} (the one command is: summarize)")
    if not summarize and not (_PROTOCOL.value and _IMAGES.value):
        raise app.UsageError("--protocol and --images are needed (all but: quality summarize --out_dir=DIR)")
    import dip_jax

    dip_jax.configure_xla()  # the library's XLA defaults, before JAX starts
    # Imported here so that --help stays fast and flag errors come before JAX starts.
    from benchmarks import quality_lib
    from experiments import progress

    progress.quiet_orbax()

    try:
        if summarize:
            print(quality_lib.summarize(_OUT_DIR.value, _PAPER_DIR.value)["table"])
            return
        shard = shard_flags.shard_from_flags(_PROCESSES, folder=True)
        out = quality_lib.run(
            _PROTOCOL.value,
            _IMAGES.value,
            _OUT_DIR.value,
            factor=_FACTOR.value,
            sigma=_SIGMA.value,
            num_iter=_NUM_ITER.value,
            seeds=_SEEDS.value,
            seed=_SEED.value,
            max_images=_MAX_IMAGES.value,
            max_size=_MAX_SIZE.value,
            resume=_RESUME.value,
            lr_dir=_LR_DIR.value,
            noisy_dir=_NOISY_DIR.value,
            masked_dir=_MASKED_DIR.value,
            mask_dir=_MASK_DIR.value,
            net_config=_NET_CONFIG.value,
            paper_dir=_PAPER_DIR.value,
            shard=shard,
        )
    except KeyboardInterrupt:  # each finished image is saved: --resume continues with the others
        print(f"quality: interrupted; the images finished are in {_OUT_DIR.value}, and --resume continues",
              file=sys.stderr)
        sys.exit(130)
    except (ValueError, OSError) as e:  # bad input: one line, no traceback
        sys.exit(f"quality: error: {e}")
    print(out["table"])


def console_main():
    """The `dip-quality` command installed by pip."""
    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    console_main()
