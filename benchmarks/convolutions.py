r"""One 3x3 convolution, three ways: what the speed notes of the README rest on.

    python -m benchmarks.convolutions --size=256 --in_channels=132 --out_channels=128

Times the forward pass, the input gradient and the weight gradient (each jitted on its own)
of a 3x3 stride-1 "valid" convolution of a (size+2)^2 image, for:
- `fp32`: `lax.conv_general_dilated`, as the models use it;
- `bf16`: the same with bf16 inputs and weights (fp32 out);
- `winograd`: Winograd F(2x2, 3x3) (Lavin & Gray 2016): 16 batched matmuls on transformed
  4x4 input tiles and 3x3 kernels, 2.25x fewer multiplications than the direct form.
Prints each one's error against fp32 and its time as direct-convolution GFLOP/s, beside the
fp32 matmul peak measured in the same run. Variants alternate within each repeat.
"""

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

import dip_jax
from benchmarks.measure import conv3x3_direct as direct
from benchmarks.measure import conv3x3_winograd as winograd
from benchmarks.measure import matmul_peak

_SIZE = flags.DEFINE_integer("size", 256, "Output side (the input is size + 2).")
_IN = flags.DEFINE_integer("in_channels", 132, "Input channels.")
_OUT = flags.DEFINE_integer("out_channels", 128, "Output channels.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed calls per variant and pass.")

VARIANTS = {
    "fp32": direct,
    "bf16": lambda x, w: direct(x, w, jnp.bfloat16),
    "winograd": winograd,
}


def main(argv):
    del argv
    dip_jax.configure_xla()  # the library's XLA defaults, before the first JAX computation
    size, cin, cout = _SIZE.value, _IN.value, _OUT.value
    kx, kw, kg = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, (1, size + 2, size + 2, cin))
    w = jax.random.normal(kw, (3, 3, cin, cout)) / np.sqrt(9 * cin)
    g = jax.random.normal(kg, (1, size, size, cout))
    flop = 2 * size * size * 9 * cin * cout
    fns, reference = {}, {}
    for name, f in VARIANTS.items():
        def loss(x, w, f=f):
            return jnp.sum(f(x, w) * g)

        fns[name] = {"forward": jax.jit(f), "input grad": jax.jit(jax.grad(loss, 0)),
                     "weight grad": jax.jit(jax.grad(loss, 1))}
    for name, passes in fns.items():
        for p, f in passes.items():
            out = jax.block_until_ready(f(x, w))
            if name == "fp32":
                reference[p] = out
            passes[p] = (f, float(jnp.max(jnp.abs(out - reference[p])) / jnp.max(jnp.abs(reference[p]))))
    times = {(n, p): [] for n in fns for p in fns[n]}
    for _ in range(_REPEATS.value):
        for n, passes in fns.items():
            for p, (f, _) in passes.items():
                t0 = time.perf_counter()
                jax.block_until_ready(f(x, w))
                times[(n, p)].append(time.perf_counter() - t0)
    print(f"3x3 conv {cin}->{cout} at {size}x{size}; fp32 matmul peak this run: {matmul_peak():.0f} GFLOP/s")
    print("| variant | pass | ms | direct-equivalent GFLOP/s | max error / max value |")
    print("|---|---|---|---|---|")
    for (n, p), t in times.items():
        med = statistics.median(t)
        print(f"| {n} | {p} | {med * 1e3:.1f} | {flop / med / 1e9:.0f} | {fns[n][p][1]:.1e} |")


if __name__ == "__main__":
    app.run(main)
