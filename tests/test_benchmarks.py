"""The benchmarks' own arithmetic: FLOP counts read off jaxprs against closed forms."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks.measure import conv_flops


def test_conv_flops_closed_form():
    x = jnp.zeros((1, 16, 12, 8))
    w = jnp.zeros((3, 3, 8, 4))

    def conv(x, w):
        return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

    forward = 2 * 16 * 12 * 4 * 8 * 3 * 3
    assert conv_flops(jax.make_jaxpr(conv)(x, w).jaxpr) == forward
    # forward + input gradient + weight gradient: three convolutions of the same cost
    grads = jax.make_jaxpr(jax.grad(lambda x, w: jnp.sum(conv(x, w)), argnums=(0, 1)))(x, w)
    assert conv_flops(grads.jaxpr) == 3 * forward
    # stride 2 halves each output side; nested jaxprs (jit) are counted too
    strided = jax.jit(lambda x, w: jax.lax.conv_general_dilated(x, w, (2, 2), "SAME",
                                                                 dimension_numbers=("NHWC", "HWIO", "NHWC")))
    assert conv_flops(jax.make_jaxpr(strided)(x, w).jaxpr) == forward / 4


def test_conv_flops_counts_1x1_convolutions_run_as_matrix_products():
    from dip_jax.models import layers

    x, w = jnp.zeros((2, 16, 12, 8)), jnp.zeros((1, 1, 8, 4))

    def conv(x, w, f):
        return f(x, w, (1, 1), "VALID", dimension_numbers=jax.lax.conv_dimension_numbers(
            x.shape, w.shape, ("NHWC", "HWIO", "NHWC")))

    forward = 2 * 2 * 16 * 12 * 4 * 8
    for f in (jax.lax.conv_general_dilated, layers.pointwise_conv):
        assert conv_flops(jax.make_jaxpr(lambda x, w, f=f: conv(x, w, f))(x, w).jaxpr) == forward
        grads = jax.make_jaxpr(jax.grad(lambda x, w, f=f: jnp.sum(conv(x, w, f)), argnums=(0, 1)))(x, w)
        assert conv_flops(grads.jaxpr) == 3 * forward


def test_seeds_benchmark_methods_take_the_same_step():
    """The seeds benchmark times the same computation whichever way the seeds run."""
    from conftest import tiny_skip

    from benchmarks.measure import seeds_stepper as stepper

    net = tiny_skip(num_channels_down=(8, 8), num_channels_up=(8, 8), num_channels_skip=(2, 2))
    losses = {}
    for method in ("sequential", "vmap", "sharded"):
        state, step = stepper(net, 2, method, 16)
        _, m = step(state)
        losses[method] = m["loss"]
    assert losses["sequential"].shape == (2,)
    assert float(losses["sequential"][0]) != float(losses["sequential"][1])  # two different seeds
    chex.assert_trees_all_close(losses["vmap"], losses["sequential"], rtol=1e-5)
    chex.assert_trees_all_close(losses["sharded"], losses["sequential"], rtol=1e-5)


@pytest.mark.parametrize("shape", [(1, 10, 10, 3), (1, 9, 12, 2)])  # even and odd output sides
def test_winograd_convolution_equals_direct(shape):
    """The Winograd variant that benchmarks/convolutions.py times computes the same convolution."""
    from benchmarks.measure import conv3x3_direct as direct
    from benchmarks.measure import conv3x3_winograd as winograd

    kx, kw = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, shape)
    w = jax.random.normal(kw, (3, 3, shape[-1], 4))
    chex.assert_trees_all_close(winograd(x, w), direct(x, w), atol=1e-5)
    grads = [jax.grad(lambda x, w, f=f: jnp.sum(jnp.sin(f(x, w))), argnums=(0, 1))(x, w) for f in (winograd, direct)]
    chex.assert_trees_all_close(grads[0], grads[1], atol=1e-4)


def test_profile_sums_op_events_by_kind():
    from benchmarks.measure import op_times

    events = [
        {"ph": "X", "name": "transpose_copy_fusion", "dur": 3000},
        {"ph": "X", "name": "transpose_copy_fusion.9", "dur": 1000},
        {"ph": "X", "name": "convolution.34", "dur": 2000},
        {"ph": "X", "name": "ThunkExecutor::Execute", "dur": 99000},  # the runtime around ops
        {"ph": "i", "name": "convolution.35", "dur": 5000},  # not a complete event
    ]
    by_kind, by_op = op_times(events, steps=2)
    assert by_kind == {"transpose_copy_fusion": 2.0, "convolution": 1.0}
    assert by_op == {"transpose_copy_fusion": 1.5, "transpose_copy_fusion.9": 0.5, "convolution.34": 1.0}


def _small_net():
    from conftest import tiny_skip

    return tiny_skip(num_channels_down=(8, 8), num_channels_up=(8, 8), num_channels_skip=(2, 2))


def test_seeds_stepper_chunks_take_the_steps_of_single_calls():
    """A call of `steps_per_call` steps (a lax.scan, as the fit loops on accelerators) is that many single steps."""
    from benchmarks.measure import seeds_stepper as stepper

    net = _small_net()
    for method in ("sequential", "vmap"):
        state, one = stepper(net, 2, method, 16, steps_per_call=1)
        state, m1 = one(state)
        state, m2 = one(state)
        chunk_state, chunk = stepper(net, 2, method, 16, steps_per_call=2)
        _, m = chunk(chunk_state)
        chex.assert_shape(m["loss"], (2, 2))  # (steps, seeds)
        chex.assert_trees_all_close(m["loss"], jnp.stack([m1["loss"], m2["loss"]]), rtol=1e-5)


def test_accelerator_report_on_cpu(tmp_path):
    """The accelerator command's every section runs here with tiny sizes and writes its tables."""
    import json

    from benchmarks import accelerator

    plan = accelerator.Plan(net=_small_net(), net_name="tiny", sizes=(16,), seeds=(1, 2), steps=2, repeats=1,
                            crop=16, precision_iters=3, determinism_iters=2, memory_sizes=(16,), memory_seeds=(1,),
                            loop_steps_per_call=(1, 2), loop_size=16)
    report = accelerator.run(plan, str(tmp_path), accelerator.SECTIONS, accelerator.Clock(deadline_s=1e9))
    sections = report["sections"]
    assert [(r["size"], r["k"], r["method"]) for r in sections["speed"]] == [
        (16, 1, "sequential"), (16, 2, "sequential"), (16, 2, "vmap")]
    assert all(r["seconds_per_step"] > 0 for r in sections["speed"] + sections["loop"])
    assert [r["steps_per_call"] for r in sections["loop"]] == [1, 2]
    # same seed, same steps: float32 and tensorfloat32 compute alike on a CPU
    fp32, tf32 = sections["precision"]
    assert fp32["psnr_ema"] == tf32["psnr_ema"] and fp32["psnr_input"] < 25
    plain, deterministic = sections["determinism"]
    assert plain["bitwise_equal"] and plain["max_abs_difference"] == 0.0
    assert "GPU flags" in deterministic["skipped"]
    assert [(r["remat"], r["peak_bytes"] > 0) for r in sections["memory"]] == [(False, True), (True, True)]
    assert json.loads((tmp_path / "accelerator.json").read_text())["sections"] == json.loads(json.dumps(sections))
    text = (tmp_path / "accelerator.md").read_text()
    assert "| 16 | 2 | vmap |" in text and "| tensorfloat32 | 16 | 3 |" in text and "not measured" in text


def test_accelerator_stops_starting_rows_at_the_deadline(tmp_path):
    from benchmarks import accelerator

    plan = accelerator.Plan(net=_small_net(), sizes=(16, 32), seeds=(1,), methods=("sequential",))
    report = accelerator.run(plan, str(tmp_path), ["speed"], accelerator.Clock(deadline_s=0))
    assert [r.get("skipped") for r in report["sections"]["speed"]] == ["deadline", "deadline"]
    assert "not measured: deadline" in (tmp_path / "accelerator.md").read_text()
    with pytest.raises(ValueError, match="unknown sections"):
        accelerator.run(plan, str(tmp_path), ["speed", "tpu"], accelerator.Clock(1))


def test_stopping_rows_replay_each_patience_and_count_the_time():
    from benchmarks.measure import stopping_rows

    variances = np.array([np.nan, 5, 4, 3, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], np.float64)  # valley at iteration 6
    psnr = np.linspace(20, 34, 15)
    history = {"es_variance": variances, "psnr_clean": psnr, "psnr_ema_clean": psnr + 1}
    metrics = {"num_iter": 15, "seconds_per_iter": 1.0, "compile_seconds": 5.0}
    short, long = stopping_rows("f16", "wmv", metrics, history, [3, 20], averaged=True)
    assert (short["detection"], short["stop"], short["steps"]) == (6, 9, 9)  # 3 checks without a new minimum
    assert short["time_fraction"] == pytest.approx((5 + 9) / (5 + 15))
    assert short["psnr_output_at_detection"] == pytest.approx(psnr[5])
    assert short["psnr_average_at_detection"] == pytest.approx(psnr[5] + 1)
    assert short["psnr_fixed_recipe"] == pytest.approx(psnr[-1] + 1)  # the averaged output after the budget
    assert (long["stop"], long["steps"], long["time_fraction"]) == (None, 15, 1.0)  # never stops: the whole budget


def test_time_to_result_stops_where_the_rule_does():
    """dip-jax's two rows on a tiny fit: the fixed budget runs every step, the self-stopping run ends
    `patience` steps after its detection and is scored on the image kept there."""
    from conftest import tiny_config

    from benchmarks import measure

    rows = measure.fixed_and_stopping_rows(tiny_config(**{"fit.num_iter": 200, "fit.es_window": 5}), "emv", 3)
    fixed, stopping = rows
    assert fixed["steps"] == 200 and fixed["es_iteration"] is None
    assert stopping["es_iteration"] >= 5 and stopping["steps"] == stopping["es_iteration"] + 3 < 200
    assert np.isfinite(fixed["psnr"]) and np.isfinite(stopping["psnr"]) and fixed["seconds"] > 0
    assert measure.result_psnr({"es_iteration": 7, "psnr_ema_es": 1.0, "psnr_ema": 2.0}, True) == 1.0
    assert measure.result_psnr({"psnr_final": 3.0, "psnr_ema": 2.0}, False) == 3.0
