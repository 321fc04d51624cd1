"""What the benchmarks measure, as functions: FLOPs read off jaxprs, a matmul peak, XLA's buffer sizes.

Kept apart from the absl apps (speed.py, memory.py, ...) so that they and the tests can import
them without defining each other's flags.
"""

import collections
import re
import tempfile
import time

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np

from dip_jax import ensemble, fit, memory, models, operators, stopping
from dip_jax.restore import InputConfig


def conv_flops(jaxpr) -> float:
    """2 * multiply-adds of every convolution in a (closed) jaxpr, nested calls included.

    Products of two matrices (2-D `dot_general`) count too: the models run their 1x1
    convolutions as (pixels, C) @ (C, D) products (`layers.pointwise_conv`). Higher-rank
    products (e.g. `jax.image.resize`'s, in the ConvDecoder) are resampling, not counted.
    """
    total = 0.0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general" and all(v.aval.ndim == 2 for v in eqn.invars[:2]):
            (lhs_contracting, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval
            total += 2.0 * np.prod(eqn.outvars[0].aval.shape) * np.prod([lhs.shape[d] for d in lhs_contracting])
        if eqn.primitive.name == "conv_general_dilated":
            lhs, rhs = (v.aval for v in eqn.invars[:2])
            out = eqn.outvars[0].aval
            dn = eqn.params["dimension_numbers"]
            rhs_shape = np.array(rhs.shape)
            in_per_group = rhs_shape[dn.rhs_spec[1]]
            window = np.prod(rhs_shape[list(dn.rhs_spec[2:])])
            total += 2.0 * np.prod(out.shape) * in_per_group * window
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):  # jit, scan, cond bodies
            total += conv_flops(sub)
    return total


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of a jitted fp32 n x n matmul, the best of `repeats`."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


def step_memory(net, k: int, size: int) -> dict:
    """XLA's buffer sizes (bytes) for one compiled step of k runs on a size x size image (`dip_jax.memory`).

    k = 1 is the single-run step, k > 1 the step vmapped over k runs.
    """
    estimate = memory.fit_memory(net, (size, size, net.num_output_channels), operators.Denoising(25.0),
                                 fit.FitConfig(backtrack=True, steps_per_call=1), runs=k,
                                 method="sequential" if k == 1 else "vmap", devices=jax.devices()[:1])
    return {"state_bytes": k * estimate.state_bytes, "peak_bytes": estimate.step_bytes,
            "temp_bytes": estimate.step_bytes - k * estimate.state_bytes}


def benchmark_net(name: str, size: int):
    """`models.get(name)` as the CLI builds it for a size x size image (the ConvDecoder needs the size)."""
    return models.get(name, **({"output_size": (size, size)} if name == "conv_decoder" else {}))


def seeds_stepper(net, k: int, method: str, size: int, steps_per_call: int = 1):
    """(state, step function) for k runs as `ensemble.fit_runs` runs them: 'sequential', 'vmap' or 'sharded'.

    'sharded' is 'vmap' over every device (an equal slice of the runs each). Each call of the
    step function takes `steps_per_call` steps of every run: one jitted step, or a `lax.scan`
    over that many (as the fit loops on accelerators, `fit.steps_per_call`).
    """
    config = fit.FitConfig(backtrack=True, steps_per_call=steps_per_call)
    keys = jnp.stack([jax.random.key(i) for i in range(k)])
    zs, fit_keys, crop = ensemble.codes(keys, net, size, size, InputConfig("noise", net.num_input_channels))
    y = jnp.full((k, size, size, net.num_output_channels), 0.5)
    devices = jax.devices() if method == "sharded" else jax.devices()[:1]
    if method == "sharded" and k % len(devices):
        raise ValueError(f"'sharded' needs K divisible by the {len(devices)} devices")
    runs = ensemble.prepare_runs(net, zs, y, operators.Denoising(25.0), config, fit_keys, crop=crop,
                                 method="vmap" if method == "sharded" else method, devices=devices)
    step = runs.chunk or runs.one
    return runs.state, lambda s: step(s, *runs.args)


def advancing(state, step):
    """A no-argument call that runs `step` on the state it holds and keeps the new one; returns the metrics.

    Takes `seeds_stepper`'s (state, step) pair as it comes: `advancing(*seeds_stepper(...))`.
    """
    box = [state]

    def call():
        box[0], metrics = step(box[0])
        return metrics

    return call


def seconds_per_call(call, calls: int, sync=jax.block_until_ready) -> float:
    """Wall seconds per call over `calls` back-to-back calls, waited for once at the end (async dispatch)."""
    t0 = time.perf_counter()
    for _ in range(calls):
        out = call()
    sync(out)
    return (time.perf_counter() - t0) / calls


# events of the runtime around the ops, not ops themselves
_NOT_OPS = ("ThunkExecutor", "$", "PjitFunction", "CommonPjRtLoadedExecutable", "SlinkyThreadPool")


def op_times(events: list, steps: int) -> tuple[dict, dict]:
    """ms per step by op kind and by op, from a perfetto trace's complete ('X') events."""
    by_op = collections.Counter()
    for e in events:
        if e.get("ph") == "X" and not e["name"].startswith(_NOT_OPS):
            by_op[e["name"]] += e.get("dur", 0) / 1e3 / steps
    by_kind = collections.Counter()
    for name, ms in by_op.items():
        by_kind[re.sub(r"[.\d]+$", "", name)] += ms
    return dict(by_kind), dict(by_op)


# Winograd F(2x2, 3x3) kernel transform (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks")
_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float32)


def conv3x3_direct(x: jax.Array, w: jax.Array, dtype=jnp.float32) -> jax.Array:
    """A 'valid' NHWC convolution as the models run it, optionally on dtype inputs (fp32 out)."""
    y = jax.lax.conv_general_dilated(x.astype(dtype), w.astype(dtype), (1, 1), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                     preferred_element_type=jnp.float32)
    return y.astype(jnp.float32)


def _input_transform(x: jax.Array, tiles: int, axis: int) -> tuple:
    """B^T along one axis, on the overlapping 4-wide tiles at stride 2."""
    a, b, c, d = (jax.lax.slice_in_dim(x, k, k + 2 * tiles - 1, stride=2, axis=axis) for k in range(4))
    return a - c, b + c, c - b, b - d


def conv3x3_winograd(x: jax.Array, w: jax.Array) -> jax.Array:
    """The 'valid' 3x3 convolution of one NHWC image as Winograd F(2x2, 3x3): 16 batched matmuls."""
    _, h, wd, c = x.shape
    out_h, out_w = h - 2, wd - 2
    th, tw = -(-out_h // 2), -(-out_w // 2)
    x = jnp.pad(x[0], ((0, 2 * th + 2 - h), (0, 2 * tw + 2 - wd), (0, 0)))
    v = jnp.stack([q for r in _input_transform(x, th, 0) for q in _input_transform(r, tw, 1)])
    u = jnp.einsum("ai,ijco,bj->abco", _G, w, _G).reshape(16, c, -1)
    m = jnp.einsum("tpc,tco->tpo", v.reshape(16, th * tw, c), u).reshape(4, 4, th, tw, -1)
    r = jnp.stack([m[0] + m[1] + m[2], m[1] - m[2] - m[3]])  # A^T along the tile rows
    y = jnp.stack([r[:, 0] + r[:, 1] + r[:, 2], r[:, 1] - r[:, 2] - r[:, 3]], axis=1)  # and columns
    y = jnp.transpose(y, (2, 0, 3, 1, 4)).reshape(2 * th, 2 * tw, -1)
    return y[None, :out_h, :out_w]


def stopping_rows(figure: str, rule: str, metrics: dict, history: dict, patiences, averaged: bool) -> list[dict]:
    """What stopping by itself with each patience would have given, from one fit that ran on."""
    num_iter = metrics["num_iter"]
    per_step, compile_s = metrics["seconds_per_iter"], metrics["compile_seconds"]
    fixed = float(history["psnr_ema_clean" if averaged else "psnr_clean"][-1])
    rows = []
    for patience in patiences:
        detected, stop = stopping.replay(history["es_variance"], patience)
        steps = stop or num_iter
        rows.append({
            "figure": figure, "rule": rule, "patience": patience, "detection": detected, "stop": stop,
            "steps": steps, "num_iter": num_iter, "time_fraction": (compile_s + steps * per_step)
            / (compile_s + num_iter * per_step),
            "psnr_output_at_detection": float(history["psnr_clean"][detected - 1]) if detected else None,
            "psnr_average_at_detection": float(history["psnr_ema_clean"][detected - 1]) if detected else None,
            "psnr_fixed_recipe": fixed, "fixed_is_average": averaged,
        })
    return rows


def result_psnr(metrics: dict, averaged: bool) -> float:
    """The PSNR (RGB) of the run's image: the 0.99 average where the recipe averages, else the output; for a
    run that stopped itself, that image at the detection."""
    if metrics.get("es_iteration"):
        return metrics["psnr_ema_es" if averaged else "psnr_es"]
    return metrics["psnr_ema" if averaged else "psnr_final"]


def timed_run(config) -> dict:
    """Wall seconds from the driver's call to its written result, and its metrics."""
    from experiments import restore_lib

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        metrics = restore_lib.run(config, out)
        return {"seconds": time.perf_counter() - start, "metrics": metrics}


def fixed_and_stopping_rows(config, rule: str, patience: int) -> list[dict]:
    """dip-jax's fixed budget of `config` and the same stopping itself (`rule`, `patience`, stop_at_detection):
    wall time to the written result, steps run, the detection and the PSNR of the run's image."""
    fixed = config.copy_and_resolve_references()
    fixed.fit.early_stopping, fixed.fit.stop_at_detection = "none", False
    stopping = config.copy_and_resolve_references()
    stopping.fit.early_stopping, stopping.fit.es_patience, stopping.fit.stop_at_detection = rule, patience, True
    averaged = config.fit.ema_decay is not None
    rows = []
    for name, c in (("dip-jax, fixed budget", fixed), (f"dip-jax, {rule} patience {patience}", stopping)):
        run = timed_run(c)
        m = run["metrics"]
        rows.append({"run": name, "seconds": run["seconds"], "steps": m["steps_run"], "psnr": result_psnr(m, averaged),
                     "es_iteration": m.get("es_iteration"), "seconds_per_iter": m["seconds_per_iter"]})
    return rows
