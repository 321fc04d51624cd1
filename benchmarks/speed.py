r"""Seconds per DIP iteration of a network on this machine.

    python -m benchmarks.speed --sizes=256,512 --steps=5 --out=/tmp/speed.json

For each size: compile time (reported apart), then `--repeats` timed runs of `--steps`
jitted steps each after one warm-up step; the median and the spread (min, max) of the
per-step time over the runs. A row per size goes to stdout as a markdown table and to
`--out` as JSON.
"""

import json
import statistics
import time

import jax
import jax.numpy as jnp
from absl import app, flags

import dip_jax  # noqa: F401  (the library's XLA defaults, before JAX starts)
from dip_jax import fit, inputs, models, operators

_SIZES = flags.DEFINE_list("sizes", ["256", "512"], "Square image sides.")
_NET = flags.DEFINE_string("net", "standard", "A name from dip_jax.models.names().")
_STEPS = flags.DEFINE_integer("steps", 5, "Steps per timed run.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed runs per size.")
_OUT = flags.DEFINE_string("out", None, "JSON output path.")


def time_size(net, size: int, steps: int, repeats: int) -> dict:
    channels = net.num_input_channels
    z = inputs.noise(jax.random.key(0), size, size, channels)
    y = jnp.full((size, size, net.num_output_channels), 0.5)
    config = fit.FitConfig(num_iter=steps, backtrack=True)
    state = fit.init_state(net, z, config, jax.random.key(1))
    one, _, _ = fit.compiled_steps(fit.Problem(net), config, "cpu")
    op = operators.Denoising(25.0)
    t0 = time.perf_counter()
    state, m = one(state, z, y, op, None)
    jax.block_until_ready(m)
    first = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            state, m = one(state, z, y, op, None)
        jax.block_until_ready(m)
        runs.append((time.perf_counter() - t0) / steps)
    return {
        "size": size,
        "net": _NET.value,
        "first_step_seconds": first,
        "seconds_per_iter_median": statistics.median(runs),
        "seconds_per_iter_min": min(runs),
        "seconds_per_iter_max": max(runs),
        "backend": jax.default_backend(),
    }


def main(argv):
    del argv
    net = models.get(_NET.value)
    rows = [time_size(net, int(s), _STEPS.value, _REPEATS.value) for s in _SIZES.value]
    print("| net | size | first step (compile) s | s/iter median | min | max |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['net']} | {r['size']} | {r['first_step_seconds']:.1f} | {r['seconds_per_iter_median']:.3f} "
              f"| {r['seconds_per_iter_min']:.3f} | {r['seconds_per_iter_max']:.3f} |")
    if _OUT.value:
        with open(_OUT.value, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    app.run(main)
