r"""Peak memory of one fit step: how it grows with the image size, the number of seeds K and remat.

    python -m benchmarks.memory --sizes=128,256,512 --seeds=1,2,4,8 --out=/tmp/memory.json

For each (size, K, remat) it compiles the step that `ensemble.fit_runs` uses (K = 1: the
single-run step; K > 1: the step vmapped over K runs) and reads XLA's buffer assignment
(`Compiled.memory_analysis()`): the state (parameters, Adam moments, averaged output,
backtracking copies), the temporaries (activations kept for the backward pass and scratch)
and their sum, the step's peak. Nothing is run, so the numbers are exact for this backend
and do not depend on what else the machine is doing; a GPU's buffer assignment differs
somewhat (other fusions), a process adds its runtime (a few hundred MB) on top.
"""

import json

from absl import app, flags

import dip_jax
from benchmarks.measure import step_memory
from dip_jax import models

_SIZES = flags.DEFINE_list("sizes", ["128", "256", "512"], "Square image sides.")
_SEEDS = flags.DEFINE_list("seeds", ["1", "2", "4", "8"], "Numbers of seeds K fitted at once.")
_NET = flags.DEFINE_string("net", "standard", "A skip-family name from dip_jax.models.names().")
_REMAT = flags.DEFINE_list("remat", ["false", "true"], "Rematerialisation settings to compare.")
_OUT = flags.DEFINE_string("out", None, "JSON output path.")

MB = 2**20


def main(argv):
    del argv
    dip_jax.configure_xla()  # the library's XLA defaults, before the first JAX computation
    rows = []
    for remat in [s.lower() == "true" for s in _REMAT.value]:
        net = models.get(_NET.value, remat=remat)
        for size in [int(s) for s in _SIZES.value]:
            for k in [int(s) for s in _SEEDS.value]:
                row = {"net": _NET.value, "size": size, "seeds": k, "remat": remat, **step_memory(net, k, size)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("| size | K | remat | state MB | temporaries MB | peak MB | peak MB per seed |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']} | {r['seeds']} | {'yes' if r['remat'] else 'no'} | {r['state_bytes'] / MB:.0f} "
              f"| {r['temp_bytes'] / MB:.0f} | {r['peak_bytes'] / MB:.0f} | {r['peak_bytes'] / MB / r['seeds']:.0f} |")
    if _OUT.value:
        with open(_OUT.value, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    app.run(main)
