r"""Per-seed cost of K seeds fitted together ('vmap') against K single fits ('sequential').

    python -m benchmarks.seeds --size=256 --seeds=1,2,4,8 --steps=3 --out=/tmp/seeds.json

    # one CPU device per core, the seeds split over them ('sharded': vmap inside shard_map)
    XLA_FLAGS=--xla_force_host_platform_device_count=2 python -m benchmarks.seeds \
        --size=128 --seeds=2,4 --methods=sequential,sharded

For each K and method: compile time apart (the first step), then the median over
`--repeats` runs of `--steps` steps, divided by K. Methods alternate within one process so
that both see the same machine state. Prints a markdown table; JSON to --out.
"""

import json
import statistics

from absl import app, flags

import dip_jax
from benchmarks.measure import advancing, seconds_per_call, seeds_stepper
from dip_jax import models

_SIZE = flags.DEFINE_integer("size", 256, "Square image side.")
_SEEDS = flags.DEFINE_list("seeds", ["1", "2", "4", "8"], "Numbers of seeds K.")
_NET = flags.DEFINE_string("net", "standard", "A name from dip_jax.models.names().")
_STEPS = flags.DEFINE_integer("steps", 3, "Steps per timed run.")
_REPEATS = flags.DEFINE_integer("repeats", 2, "Timed runs per (K, method).")
_METHODS = flags.DEFINE_list("methods", ["sequential", "vmap"],
                             "Methods to compare: sequential, vmap (one device), sharded (every device).")
_OUT = flags.DEFINE_string("out", None, "JSON output path.")


def main(argv):
    del argv
    dip_jax.configure_xla()  # the library's XLA defaults, before the first JAX computation
    net = models.get(_NET.value)
    rows = []
    for k in [int(s) for s in _SEEDS.value]:
        runs = {}
        for method in _METHODS.value:
            call = advancing(*seeds_stepper(net, k, method, _SIZE.value))
            runs[method] = {"first": seconds_per_call(call, 1), "times": [], "call": call}
        for _ in range(_REPEATS.value):  # alternate the methods
            for r in runs.values():
                r["times"].append(seconds_per_call(r["call"], _STEPS.value))
        for method, r in runs.items():
            med = statistics.median(r["times"])
            rows.append({"seeds": k, "method": method, "size": _SIZE.value, "net": _NET.value,
                         "first_step_seconds": r["first"], "seconds_per_iter": med,
                         "seconds_per_seed_iter": med / k, "spread": [min(r["times"]), max(r["times"])]})
    print("| K | method | s / iter (all seeds) | s / seed-iter | first step (compile) s |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['seeds']} | {r['method']} | {r['seconds_per_iter']:.3f} | {r['seconds_per_seed_iter']:.3f} "
              f"| {r['first_step_seconds']:.1f} |")
    if _OUT.value:
        with open(_OUT.value, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    app.run(main)
