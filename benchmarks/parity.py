r"""Same weights, same numbers: dip-jax against the original PyTorch code.

    pip install torch==2.13.0          # not a dependency of dip-jax: only this check and compare_pytorch need it
    git clone https://github.com/DmitryUlyanov/deep-image-prior /tmp/dip_ref
    python -m benchmarks.parity --reference_dir=/tmp/dip_ref --out=/tmp/parity.json

1. Networks. Every architecture the original builds, with the arguments of the notebook that
   uses it (and a few variants for the options no notebook combines), is built twice: by the
   original's `models` package, imported unchanged from `--reference_dir`, and by dip-jax.
   The PyTorch net's initial weights (its norms' gamma drawn from U(0, 1) and beta from
   U(-0.1, 0.1), so that a swapped or misplaced norm would show) are copied into the Flax
   tree by `benchmarks.reference.to_flax`. Both run on the same U(0, 0.1) code, in train-mode
   BatchNorm with a batch of one (the original never leaves it; dip-jax has no running
   statistics), and both differentiate the MSE to the same random target. Compared: the
   output, the loss and the gradient of every parameter tensor.
2. Operators: the original's SR `Downsampler` (preserve_size, as the notebooks use it) on a
   random image and the gradient through it, for each kernel and factor; its `tv_loss` (the
   SR prior-effect notebook's TV term) and its gradient.
3. A fit: `--fit_steps` steps of the denoising notebook (standard net, F16 centre crop with
   sigma 25 noise, Adam 0.01, sigma_p 1/30, the 0.99 output average, backtracking), the
   original's closure against `fit.train_step`, from the same weights and fed the same
   perturbed codes at every step (dip-jax's own `fit.perturbed_code`), so only arithmetic
   differs. Reported: the largest difference of the PSNR trajectories.

Each comparison runs in float32, what users run, and in float64, where rounding is out of
the way, so that a difference in what is computed cannot hide behind float32 noise; beside
the float32 numbers stands the original's own float32 error (its float32 result against its
float64 one). Errors are relative: max|dip-jax - original| / max|original|, for the output,
for all parameter gradients of a net stacked, and for the worst single tensor. Biases whose
gradient is 0 in exact arithmetic (conv biases feeding a norm, merge-BN betas feeding a
reflection-padded conv and its norm: `reference.Layer.bias_cancelled`) are reported only by
size, as both codes return rounding noise there. The original's `Downsampler` stores its
fixed kernel as a parameter (trained along if it sits inside a net); dip-jax keeps it a
constant, so those tensors are not compared (REFERENCE §6.13).

Measured (torch 2.13.0 CPU, jax 0.10.2, the command above; 25 minutes on a shared 2-core CPU,
most of it XLA's float64 convolution gradients, which `--nofloat64` skips): in float64 every
output and gradient of the 20 networks, the downsamplers and the TV term agrees to <= 1e-12;
in float32 outputs agree to <= 3.5e-4 (texture_nets; <= 3.4e-5 for the others) and stacked
gradients to <= 5e-2, at most 18x the original's own float32 error. Over 50 fit steps
the float32 PSNR trajectories differ by up to 1.0 dB (the original's float32 run differs from
its float64 run by 2.7 dB), the float64 ones by 3e-6 dB. Tables: benchmarks/PARITY.md.

Two of the original's builders fail as written, and are called as they meant: get_net('ResNet')
passes BatchNorm2d as the activation (the library notebook's own `ResNet(...)` call is used),
and texture_nets passes float paddings to Conv2d (its module gets an `nn` whose Conv2d and
ReflectionPad2d take them as ints; the file itself is not touched). The original's `utils`
imports torchvision for plotting only; a stand-in module is registered if it is absent.
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import os
import sys

import jax
import numpy as np
from absl import app, flags

import dip_jax
from benchmarks.parity_lib import (
    DOWNSAMPLERS,
    NET_CASES,
    compare_downsampler,
    compare_fit,
    compare_net,
    compare_tv,
    original_models,
    state_dict_shapes,
)

_REFERENCE_DIR = flags.DEFINE_string("reference_dir", None, "A checkout of DmitryUlyanov/deep-image-prior.",
                                     required=True)
_SIZE = flags.DEFINE_integer("size", 64, "Image side for the network checks (raised to what a net needs).")
_NETS = flags.DEFINE_list("nets", None, "Only these network checks (default: all).")
_FIT_SIZE = flags.DEFINE_integer("fit_size", 64, "Side of the F16 centre crop that the fit restores.")
_FIT_STEPS = flags.DEFINE_integer("fit_steps", 50, "Steps of the fit.")
_FLOAT64 = flags.DEFINE_bool("float64", True, "Also compare in float64 (and each float32 result with its float64 "
                             "one). XLA's float64 conv gradients on CPU are slow: most of the run time.")
_OUT = flags.DEFINE_string("out", None, "JSON output path.")
_WRITE_SHAPES = flags.DEFINE_string("write_shapes", None, "Only write the state_dict shapes of the original's nets "
                                    "to this JSON file (the fixture of tests/test_reference.py), then exit.")


# ---------------------------------------------------------------------------------------------


def print_tables(nets: list, ops: list, fitted: dict) -> None:
    print("Networks: dip-jax against the original from the same weights and code; relative errors, max|diff| / "
          "max|original| (absolute in brackets). 'exact': the original in float64.")
    print("| net | used in | size | params | output fp32: vs original (original vs exact) | "
          "gradients fp32: vs original (original vs exact) | worst gradient tensor fp32: vs original (original vs "
          "exact) | fp64: output, gradients | "
          "biases before a norm: largest gradient (largest of all) |")
    print("|---|---|---|---:|---|---|---|---|---|")
    for r in nets:
        f32 = r["float32"]
        own = collections.defaultdict(lambda: float("nan"), r.get("original_float32_error", {}))
        f64 = collections.defaultdict(lambda: float("nan"), r.get("float64", {}))
        print(f"| {r['name']} | {r['use']} | {r['size']} | {r['params']:,} | {f32['output_rel']:.1e} "
              f"({f32['output_abs']:.1e}) ({own['output_rel']:.1e}) | {f32['grad_rel']:.1e} ({f32['grad_abs']:.1e}) "
              f"({own['grad_rel']:.1e}) | {f32['grad_tensor_rel']:.1e} ({own['grad_tensor_rel']:.1e}) "
              f"{f32['grad_worst_tensor']} | {f64['output_rel']:.1e}, "
              f"{f64['grad_rel']:.1e} | {f32['cancelled_bias_grad']:.1e} ({f32['grad_largest']:.1e}) |")
    print()
    print("| operator | size | output fp32 | gradient fp32 | output fp64 | gradient fp64 |")
    print("|---|---|---|---|---|---|")
    ops_by_name = collections.defaultdict(dict)
    for r in ops:
        ops_by_name[r["name"]][r["dtype"]] = r
    for name, rows in ops_by_name.items():
        r32, r64 = rows["float32"], collections.defaultdict(lambda: float("nan"), rows.get("float64", {}))
        print(f"| {name} | {r32['size']} | {r32['output_rel']:.1e} ({r32['output_abs']:.1e}) | "
              f"{r32['grad_rel']:.1e} ({r32['grad_abs']:.1e}) | {r64['output_rel']:.1e} | {r64['grad_rel']:.1e} |")
    if fitted:
        print()
        t = fitted["trajectories"]["original float32"]
        print(f"Fit: {fitted['steps']} steps of the denoising notebook, standard net, F16 {fitted['size']}x"
              f"{fitted['size']} centre crop, sigma 25 (original float32: PSNR to clean "
              f"{t['psnr_clean'][0]:.2f} -> {t['psnr_clean'][-1]:.2f} dB, averaged output "
              f"{t['psnr_ema_clean'][-1]:.2f} dB)")
        print("| runs compared | PSNR(out, noisy): largest difference (dB) | PSNR(out, clean) | PSNR(average, clean) | "
              "average after the last step: rel | backtracks |")
        print("|---|---|---|---|---|---|")
        for label, row in fitted["pairs"].items():
            print(f"| {label} | {row['psnr_obs']:.1e} | {row['psnr_clean']:.1e} | {row['psnr_ema_clean']:.1e} | "
                  f"{row['ema_rel']:.1e} | {row['backtracks'][0]}, {row['backtracks'][1]} |")


def main(argv):
    del argv
    dip_jax.configure_xla()  # the library's XLA defaults, before the first JAX computation
    import torch

    jax.config.update("jax_enable_x64", True)  # float64 runs beside float32 ones; float32 inputs stay float32
    reference_dir = os.path.abspath(_REFERENCE_DIR.value)
    package = original_models(reference_dir)
    if _WRITE_SHAPES.value:
        with open(_WRITE_SHAPES.value, "w") as f:
            f.write("{\n" + ",\n".join(f"{json.dumps(name)}: {json.dumps(entries)}"
                                        for name, entries in state_dict_shapes(package).items()) + "\n}\n")
        return
    cases = [c for c in NET_CASES if _NETS.value is None or c.name in _NETS.value]
    nets = []
    for case in cases:
        with contextlib.redirect_stdout(io.StringIO()):  # the original's UNet prints its padding per block
            row = compare_net(case, package, _SIZE.value, _FLOAT64.value)
        nets.append(row)
        print(f"{row['name']}: float32 output {row['float32']['output_rel']:.1e}, gradients "
              f"{row['float32']['grad_rel']:.1e}", file=sys.stderr)
    ops = []
    for dtype in (np.float32, np.float64) if _FLOAT64.value else (np.float32,):
        ops += [compare_downsampler(reference_dir, k, f, p, _SIZE.value, dtype) for k, f, p in DOWNSAMPLERS]
        ops.append(compare_tv(reference_dir, _SIZE.value, dtype))
    fitted = {}
    if _FIT_STEPS.value:
        fitted = compare_fit(reference_dir, package, _FIT_SIZE.value, _FIT_STEPS.value, _FLOAT64.value)
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), jax {jax.__version__} "
          f"({jax.default_backend()})")
    print_tables(nets, ops, fitted)
    if _OUT.value:
        with open(_OUT.value, "w") as f:
            json.dump({"nets": nets, "operators": ops, "fit": fitted, "torch_version": torch.__version__,
                       "jax_version": jax.__version__}, f, indent=1)


if __name__ == "__main__":
    app.run(main)
