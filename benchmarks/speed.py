r"""Seconds per DIP iteration of a network on this machine, and how close it runs to the peak.

    python -m benchmarks.speed --sizes=256,512 --steps=4 --repeats=3 --out=/tmp/speed.json
    python -m benchmarks.speed --nets=standard,UNet,ResNet,texture_nets,deep_decoder --sizes=256
    python -m benchmarks.speed --sizes=64,128 --seeds=1,2,4,8

For each net, size and number of seeds K (run as `fit_seeds` runs them on this backend: one
after the other on a one-device CPU, vmapped elsewhere): the first step (compilation included)
apart, then `--repeats` timed runs of `--steps` steps each; the median and the spread (min,
max) of the time per iteration of all K seeds. GFLOP per iteration is counted from the step's
own convolutions (forward, input gradient and weight gradient, read off the jaxpr of the step
as timed, the 1x1 convolutions run as matrix products included), and the
achieved GFLOP/s is compared with an fp32 matmul peak measured in the same run. Peak memory is
the process's maximum resident size so far (it only grows from row to row).
A row per (net, size, K) goes to stdout as a markdown table and to `--out` as JSON.
"""

import json
import resource
import statistics

import jax
import jax.extend.core
from absl import app, flags

import dip_jax
from benchmarks.measure import advancing, benchmark_net, conv_flops, matmul_peak, seconds_per_call, seeds_stepper
from dip_jax import ensemble, models
from dip_jax.restore import code_shape

_SIZES = flags.DEFINE_list("sizes", ["256", "512"], "Square image sides.")
_NETS = flags.DEFINE_list("nets", ["standard"], "Names from dip_jax.models.names(), timed in turn.")
_SEEDS = flags.DEFINE_list("seeds", ["1"], "Numbers of seeds K, fitted as `fit_seeds` fits them here.")
_STEPS = flags.DEFINE_integer("steps", 5, "Steps per timed run.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed runs per size.")
_OUT = flags.DEFINE_string("out", None, "JSON output path.")


def time_size(name: str, size: int, k: int, steps: int, repeats: int, peak: float) -> dict:
    net = benchmark_net(name, size)
    # K seeds run as `fit_seeds` runs them here ('auto'), on the code `restore` makes
    method = ensemble.choose_method("auto", jax.default_backend(), jax.device_count(), size * size)
    state, step = seeds_stepper(net, k, method, size)
    flops = conv_flops(jax.make_jaxpr(step)(state).jaxpr)  # all K seeds' steps
    call = advancing(state, step)
    first = seconds_per_call(call, 1)
    runs = [seconds_per_call(call, steps) for _ in range(repeats)]
    med = statistics.median(runs)
    return {
        "size": size,
        "net": name,
        "seeds": k,
        "method": method,
        "params": models.num_params(net, code_shape(net, size, size)),
        "first_step_seconds": first,
        "seconds_per_iter_median": med,
        "seconds_per_iter_min": min(runs),
        "seconds_per_iter_max": max(runs),
        "seconds_per_seed_iter": med / k,
        "iters_per_second": 1.0 / med,
        "conv_gflop_per_iter": flops / 1e9,
        "achieved_gflops": flops / 1e9 / med,
        "matmul_peak_gflops": peak,
        "fraction_of_peak": flops / 1e9 / med / peak,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "backend": jax.default_backend(),
    }


def main(argv):
    del argv
    dip_jax.configure_xla()  # the library's XLA defaults, before the first JAX computation
    peak = matmul_peak()
    rows = [time_size(name, int(s), int(k), _STEPS.value, _REPEATS.value, peak)
            for name in _NETS.value for s in _SIZES.value for k in _SEEDS.value]
    print(f"fp32 matmul peak measured in this run: {peak:.0f} GFLOP/s")
    print("| net | params | size | K (method) | first step s | s/iter median (min-max) | s/seed-iter | it/s "
          "| conv GFLOP/iter | GFLOP/s | of peak | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['net']} | {r['params']:,} | {r['size']} | {r['seeds']} ({r['method']}) "
              f"| {r['first_step_seconds']:.1f} | {r['seconds_per_iter_median']:.3f} "
              f"({r['seconds_per_iter_min']:.3f}-{r['seconds_per_iter_max']:.3f}) | {r['seconds_per_seed_iter']:.3f} "
              f"| {r['iters_per_second']:.2f} "
              f"| {r['conv_gflop_per_iter']:.1f} | {r['achieved_gflops']:.0f} | {r['fraction_of_peak']:.0%} "
              f"| {r['peak_rss_mib']:.0f} |")
    if _OUT.value:
        with open(_OUT.value, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    app.run(main)
