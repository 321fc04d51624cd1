"""The original PyTorch code's fit step beside dip-jax's, timed alternately (compare_pytorch, time_to_result).

torch is imported inside the functions: it is needed only by these benchmarks (pip install torch==2.13.0).
"""

import statistics

import jax

from benchmarks.measure import advancing, benchmark_net, seconds_per_call, seeds_stepper
from benchmarks.reference import import_reference
from dip_jax import models

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
