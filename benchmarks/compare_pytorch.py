r"""Seconds per DIP iteration: dip-jax against the original PyTorch code, side by side in one process.

    pip install torch==2.13.0          # not a dependency of dip-jax: only this and benchmarks.parity need it
    git clone https://github.com/DmitryUlyanov/deep-image-prior /tmp/dip_ref
    python -m benchmarks.compare_pytorch --reference_dir=/tmp/dip_ref --sizes=256,512 --steps=3 --repeats=3

The configuration is the paper's denoising one (REFERENCE §3.2, F16): the original's
`get_net(32, 'skip', 'reflection', upsample_mode='bilinear')` (2,217,831 parameters) built by
the original's own `models` package, a U(0, 0.1) code perturbed by N(0, (1/30)^2) noise at
every step, MSE to the observation, Adam (lr 0.01), the 0.99 average of outputs and the
PSNR to the observation that the notebook's backtracking watches. dip-jax runs the same
step (`fit.train_step` with backtracking) on `models.get('standard')`, built as `benchmarks.speed` builds it.

Timing: after one warm-up step each (compilation for dip-jax, reported apart), the two
implementations alternate, `--repeats` times `--steps` steps, so that both see the same
machine state; the ratio of medians is what to quote. PyTorch uses `torch.get_num_threads()`
threads (all cores by default), XLA all cores too.
"""

import json
import statistics

import jax
from absl import app, flags

import dip_jax
from benchmarks.measure import advancing, benchmark_net, seconds_per_call, seeds_stepper
from benchmarks.reference import import_reference
from dip_jax import models

_REFERENCE_DIR = flags.DEFINE_string("reference_dir", None, "A checkout of DmitryUlyanov/deep-image-prior.",
                                     required=True)
_SIZES = flags.DEFINE_list("sizes", ["256", "512"], "Square image sides.")
_STEPS = flags.DEFINE_integer("steps", 3, "Steps per timed run.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed runs per implementation and size.")
_OUT = flags.DEFINE_string("out", None, "JSON output path.")

REG_NOISE_STD = 1.0 / 30.0
EMA = 0.99


def torch_stepper(reference_dir: str, size: int):
    """The notebook's closure + optimizer.step() on the original's net: (step function, torch module)."""
    import torch

    torch.manual_seed(0)
    get_net = import_reference(reference_dir).get_net  # the original's `models` package
    net = get_net(32, "skip", "reflection", upsample_mode="bilinear", skip_n33d=128, skip_n33u=128, skip_n11=4,
                  num_scales=5)
    net_input = torch.rand(1, 32, size, size) * 0.1
    noise = net_input.clone()
    observation = torch.full((1, 3, size, size), 0.5)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    state = {"avg": None}

    def step():
        optimizer.zero_grad()
        out = net(net_input + noise.normal_() * REG_NOISE_STD)
        state["avg"] = out.detach() if state["avg"] is None else state["avg"] * EMA + out.detach() * (1 - EMA)
        loss = torch.nn.functional.mse_loss(out, observation)
        loss.backward()
        psnr = -10 * torch.log10(torch.mean((out.detach() - observation) ** 2))  # what backtracking watches
        optimizer.step()
        return loss.item(), psnr.item()

    return step, net


def jax_stepper(size: int):
    """The standard net's fit step as `benchmarks.speed` times it (one seed), and the net."""
    net = benchmark_net("standard", size)
    return advancing(*seeds_stepper(net, 1, "sequential", size)), net


def compare_size(size: int, steps: int, repeats: int, reference_dir: str) -> dict:
    import torch

    t_step, t_net = torch_stepper(reference_dir, size)
    j_step, j_net = jax_stepper(size)
    n_torch = sum(p.numel() for p in t_net.parameters())
    n_jax = models.num_params(j_net, (1, size, size, 32))
    if n_torch != n_jax:
        raise RuntimeError(f"the two nets differ: {n_torch} parameters in PyTorch, {n_jax} in dip-jax")
    first_jax = seconds_per_call(j_step, 1)
    first_torch = seconds_per_call(t_step, 1, sync=lambda out: None)  # .item() already synchronised
    times = {"pytorch": [], "dip_jax": []}
    for _ in range(repeats):
        times["pytorch"].append(seconds_per_call(t_step, steps, sync=lambda out: None))
        times["dip_jax"].append(seconds_per_call(j_step, steps))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "size": size,
        "params": n_jax,
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "pytorch_seconds_per_iter": med["pytorch"],
        "dip_jax_seconds_per_iter": med["dip_jax"],
        "pytorch_spread": [min(times["pytorch"]), max(times["pytorch"])],
        "dip_jax_spread": [min(times["dip_jax"]), max(times["dip_jax"])],
        "speedup": med["pytorch"] / med["dip_jax"],
        "dip_jax_first_step_seconds": first_jax,
        "pytorch_first_step_seconds": first_torch,
    }


def main(argv):
    del argv
    dip_jax.configure_xla()  # the library's XLA defaults, before the first JAX computation
    rows = [compare_size(int(s), _STEPS.value, _REPEATS.value, _REFERENCE_DIR.value) for s in _SIZES.value]
    print(f"torch {rows[0]['torch_version']} ({rows[0]['torch_threads']} threads), jax {rows[0]['jax_version']} "
          f"({rows[0]['backend']})")
    print("| size | PyTorch s/iter (min-max) | dip-jax s/iter (min-max) | speed-up | dip-jax first step s |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']} | {r['pytorch_seconds_per_iter']:.3f} ({r['pytorch_spread'][0]:.3f}-"
              f"{r['pytorch_spread'][1]:.3f}) | {r['dip_jax_seconds_per_iter']:.3f} ({r['dip_jax_spread'][0]:.3f}-"
              f"{r['dip_jax_spread'][1]:.3f}) | {r['speedup']:.2f}x | {r['dip_jax_first_step_seconds']:.1f} |")
    if _OUT.value:
        with open(_OUT.value, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    app.run(main)
