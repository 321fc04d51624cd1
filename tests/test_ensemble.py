"""Several seeds and images in one call: each seed is the single-seed fit, sharding changes nothing."""

import functools
import os
import subprocess
import sys
import textwrap

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_skip

from dip_jax import ensemble, fit, metrics, operators
from dip_jax.restore import InputConfig, restore

CODE = InputConfig("noise", 4)
OP = operators.Denoising(25.0)
CONFIG = fit.FitConfig(num_iter=3, backtrack=True)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def keys(k, start=0):
    return jnp.stack([jax.random.key(start + i) for i in range(k)])


@pytest.fixture(scope="module")
def problem():
    clean = jax.random.uniform(jax.random.key(9), (32, 32, 3))
    return tiny_skip(), clean, OP.simulate(clean, jax.random.key(1))


def test_vmapped_seed_starts_exactly_as_the_single_run(problem):
    net, clean, y = problem
    ks = keys(3)
    zs, fit_keys, crop = ensemble.codes(ks, net, 32, 32, CODE)
    p = fit.Problem(net, crop)
    init = functools.partial(fit.initial_state, net, config=CONFIG, problem=p)
    batched = jax.jit(jax.vmap(init))(zs, fit_keys)

    def grad_at_first_step(state, z):
        zt = fit.perturbed_code(z, CONFIG, state.key, 0)
        return jax.value_and_grad(lambda q: OP.data_term(p.render(q, zt), y))(state.params)

    b_loss, b_grad = jax.jit(jax.vmap(grad_at_first_step))(batched, zs)
    for i in range(3):
        z_key, fit_key = jax.random.split(ks[i])  # as `restore` splits its key
        single = fit.init_state(net, zs[i], CONFIG, fit_key, p)
        chex.assert_trees_all_close(jax.tree_util.tree_map(lambda x, i=i: x[i], batched.params), single.params,
                                    rtol=1e-5, atol=1e-7)
        loss, grad = jax.jit(grad_at_first_step)(single, zs[i])
        np.testing.assert_allclose(b_loss[i], loss, rtol=1e-6)
        chex.assert_trees_all_close(jax.tree_util.tree_map(lambda x, i=i: x[i], b_grad), grad, rtol=1e-4, atol=1e-7)
    # and the whole vmapped fit's first loss is the single fit's
    r = ensemble.fit_seeds(y, OP, net, CONFIG, ks, input_config=CODE, method="vmap")
    single = restore(y, OP, net, CONFIG, ks[2], input_config=CODE)
    np.testing.assert_allclose(r.history["loss"][2, 0], single.history["loss"][0], rtol=1e-6)


def test_sequential_seeds_are_bitwise_single_runs(problem):
    net, clean, y = problem
    r = ensemble.fit_seeds(y, OP, net, CONFIG, keys(2), input_config=CODE, clean=clean, method="sequential")
    chex.assert_shape(r.finals, (2, 32, 32, 3))
    chex.assert_shape(r.history["psnr_ema_clean"], (2, 3))
    for i in range(2):
        single = restore(y, OP, net, CONFIG, jax.random.key(i), input_config=CODE, clean=clean)
        chex.assert_trees_all_equal(r.finals[i], single.final)
        chex.assert_trees_all_equal(r.emas[i], single.ema)
        np.testing.assert_array_equal(r.history["loss"][i], single.history["loss"])
    np.testing.assert_allclose(r.mean, np.mean(np.asarray(r.emas), 0), rtol=1e-6)
    np.testing.assert_allclose(r.std, np.std(np.asarray(r.emas), 0), rtol=1e-5, atol=1e-7)


def test_vmap_agrees_with_sequential_and_chunks(problem):
    net, clean, y = problem
    seq = ensemble.fit_seeds(y, OP, net, CONFIG, keys(3), input_config=CODE, method="sequential")
    vm = ensemble.fit_seeds(y, OP, net, CONFIG, keys(3), input_config=CODE, method="vmap", seeds_per_chunk=2)
    np.testing.assert_allclose(vm.history["loss"], seq.history["loss"], rtol=1e-4)
    chex.assert_trees_all_close(vm.finals, seq.finals, atol=1e-3)


def test_long_fits_agree_statistically(photo64):
    """DIP fits are chaotic, so vmapped and single long fits only agree within the seeds' spread."""
    net = tiny_skip(num_channels_down=(16, 16, 16), num_channels_up=(16, 16, 16), num_channels_skip=(4, 4, 4))
    clean = jnp.asarray(photo64)
    y = OP.simulate(clean, jax.random.key(0))
    config = fit.FitConfig(num_iter=300, backtrack=True)
    r = ensemble.fit_seeds(y, OP, net, config, keys(3, start=10), input_config=CODE, clean=clean, method="vmap")
    psnrs = np.array([float(metrics.psnr(e, clean)) for e in r.emas])
    single = restore(y, OP, net, config, jax.random.key(10), input_config=CODE, clean=clean)
    p = float(metrics.psnr(single.ema, clean))
    assert abs(p - psnrs.mean()) <= 3 * psnrs.std() + 0.3, (p, psnrs)
    # averaging seeds beats the typical single seed on a real noisy photo
    assert float(metrics.psnr(r.mean, clean)) > psnrs.mean()
    assert float(metrics.psnr(r.mean, clean)) > float(metrics.psnr(y, clean)) + 2


def test_images_are_grouped_by_shape_and_match_single_image_calls(problem):
    net, clean, y = problem
    small = OP.simulate(jax.random.uniform(jax.random.key(4), (24, 40, 3)), jax.random.key(5))
    out = ensemble.fit_images([y, small, y * 0.9], OP, net, CONFIG, keys(2), input_config=CODE, method="sequential")
    assert [o.finals.shape for o in out] == [(2, 32, 32, 3), (2, 24, 40, 3), (2, 32, 32, 3)]
    alone = ensemble.fit_seeds(small, OP, net, CONFIG, keys(2), input_config=CODE, method="sequential")
    chex.assert_trees_all_equal(out[1].finals, alone.finals)
    with pytest.raises(ValueError, match="not HWC"):
        ensemble.fit_images([y[0]], OP, net, CONFIG, keys(1), input_config=CODE)
    with pytest.raises(ValueError, match="unknown method"):
        ensemble.fit_seeds(y, OP, net, CONFIG, keys(1), input_config=CODE, method="pmap")


def test_auto_method_per_backend():
    assert ensemble.choose_method("auto", "cpu", 1) == "sequential"
    assert ensemble.choose_method("auto", "cpu", 4) == "vmap"
    # one accelerator: vmap only where it was measured faster, small images
    assert ensemble.choose_method("auto", "gpu", 1, pixels=64 * 64) == "vmap"
    assert ensemble.choose_method("auto", "gpu", 1, pixels=256 * 256) == "sequential"
    assert ensemble.choose_method("auto", "gpu", 1) == "sequential"
    assert ensemble.choose_method("auto", "cpu", 1, pixels=16) == "sequential"
    assert ensemble.choose_method("auto", "gpu", 2, pixels=256 * 256) == "vmap"


SHARDED = textwrap.dedent("""
    import sys
    sys.path.insert(0, "tests")
    import dip_jax, jax, jax.numpy as jnp, numpy as np
    from conftest import tiny_skip
    from dip_jax import ensemble, fit, operators
    from dip_jax.restore import InputConfig
    assert jax.device_count() == 4, jax.devices()
    op = operators.Denoising(25.0)
    y = op.simulate(jax.random.uniform(jax.random.key(9), (32, 32, 3)), jax.random.key(1))
    ks = jnp.stack([jax.random.key(i) for i in range(3)])  # 3 seeds on 4 devices: padded
    cfg = fit.FitConfig(num_iter=3, backtrack=True)
    run = lambda devices: ensemble.fit_seeds(y, op, tiny_skip(), cfg, ks, input_config=InputConfig("noise", 4),
                                             method="vmap", devices=devices)
    sharded, one = run(jax.devices()), run(jax.devices()[:1])
    np.testing.assert_allclose(sharded.history["loss"], one.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(sharded.finals, one.finals, atol=1e-4)
    print("SHARDED_OK", sharded.finals.shape)
""")


def test_sharded_over_four_cpu_devices_equals_unsharded():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, "-c", SHARDED], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert "SHARDED_OK (3, 32, 32, 3)" in r.stdout, r.stderr[-3000:]
