"""Fig. 2's targets and loss curves, and the untrained nets' outputs, against direct computations."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
from conftest import cli, tiny_skip

from dip_jax import fit, operators
from dip_jax.restore import InputConfig, restore
from experiments import why_it_works_lib as why


def test_shuffled_image_is_a_permutation_of_the_pixels(photo64):
    shuffled = np.asarray(why.shuffle_pixels(jnp.asarray(photo64), jax.random.key(0)))
    pixels = lambda a: a.reshape(-1, 3)[np.lexsort(a.reshape(-1, 3).T)]  # noqa: E731  (rows sorted)
    np.testing.assert_array_equal(pixels(shuffled), pixels(photo64))  # the same colours, each pixel kept whole
    assert np.mean(np.all(shuffled == photo64, axis=-1)) < 0.05  # at other places
    assert why.roughness(shuffled) > 3 * why.roughness(photo64)  # and no structure left


def test_fit_targets(photo64):
    targets = why.fit_targets(jnp.asarray(photo64), jax.random.key(1), sigma=25.0)
    assert list(targets) == ["image", "image + noise", "shuffled pixels", "U(0, 1) noise"]
    for image in targets.values():
        chex.assert_shape(image, (64, 64, 3))
        assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    residual = np.asarray(targets["image + noise"]) - photo64
    assert 0.08 < residual.std() < 0.1  # 25 / 255 = 0.098, less where clipped
    assert abs(float(targets["U(0, 1) noise"].mean()) - 0.5) < 0.01


def test_loss_curves_are_single_fits_of_each_target(photo64):
    """One entry per step; each curve is what `restore` records for that target with the same key."""
    image = jnp.asarray(photo64[:32, :32])
    targets = why.fit_targets(image, jax.random.key(2))
    net = tiny_skip()
    config = fit.FitConfig(num_iter=40, lr=0.01, reg_noise_std=0.0, ema_decay=None)
    key = jax.random.key(3)
    curves = why.fit_curves(targets, net, config, key)
    for name in ("image", "shuffled pixels"):
        assert curves[name].shape == (40,)
        direct = restore(targets[name], operators.Denoising(), net, config, key, input_config=InputConfig("noise", 4))
        np.testing.assert_allclose(curves[name], direct.history["loss"], rtol=1e-4)
    print({name: (float(c[0]), float(c[-1])) for name, c in curves.items()})
    # the same colours, fitted from the same start: the natural arrangement is fitted faster
    assert curves["image"][-1] < 0.7 * curves["shuffled pixels"][-1]
    numbers = why.curve_numbers(curves)
    image_curve = curves["image"]
    assert numbers["image"] == {"loss_step_1": float(image_curve[0]), "loss_step_10": float(image_curve[9]),
                                "loss_last": float(image_curve[-1]),
                                "steps_to_0.01": why.first_step_below(image_curve, 0.01),
                                "steps_to_0.002": why.first_step_below(image_curve, 0.002)}


def test_first_step_below_counts_from_one():
    loss = np.array([0.5, 0.2, 0.009, 0.02, 0.001])
    assert why.first_step_below(loss, 0.01) == 3  # the first at or below, later rises ignored
    assert why.first_step_below(loss, 0.5) == 1
    assert why.first_step_below(loss, 1e-4) is None


def test_untrained_outputs_are_the_nets_first_outputs():
    z = 0.1 * jax.random.uniform(jax.random.key(4), (1, 32, 32, 4))
    nets = {"a": tiny_skip(), "b": tiny_skip(upsample_mode="nearest")}
    key = jax.random.key(5)
    out = why.untrained_outputs(nets, z, key)
    for name, net in nets.items():
        direct = net.apply({"params": net.init(key, z)["params"]}, z)[0]
        np.testing.assert_allclose(out[name], direct, atol=1e-5)
    names = why.untrained_nets(32)
    assert list(names) == ["hourglass depth 1", "hourglass depth 3", "hourglass depth 5", "skip depth 5",
                           "skip depth 5, nearest"]
    assert [len(n.num_channels_down) for n in names.values()] == [1, 3, 5, 5, 5]
    assert {n.num_channels_down for n in why.untrained_nets(32, width=8).values()} == {(8,), (8,) * 3, (8,) * 5}
    assert names["skip depth 5, nearest"].upsample_mode == "nearest"


def test_roughness_is_neighbour_differences_over_contrast():
    ramp = np.tile(np.linspace(0, 1, 11, dtype=np.float32)[None, :, None], (11, 1, 1))
    # horizontal steps of 0.1, vertical steps of 0: mean 0.05, over the ramp's std
    np.testing.assert_allclose(why.roughness(ramp), 0.05 / ramp.std(), rtol=1e-6)


def test_command_line(tmp_path):
    out = tmp_path / "why"
    r = cli("--out_dir", str(out), "--size=32", "--num_iter=3", "--untrained_size=64", "--net=quick_test_net",
            module="experiments.why_it_works")
    assert r.returncode != 0 and "quick_test_net" in r.stderr  # a bad net name: one line
    # the smallest nets that run: a 2-level skip net fitted at 32x32, the untrained nets 8 channels wide
    r = cli(f"--out_dir={out}", "--size=32", "--num_iter=3", "--untrained_size=64", "--untrained_width=8",
            "--net=skip_depth2", module="experiments.why_it_works")
    assert r.returncode == 0, r.stderr[-2000:]
    for name in ("fit_speed.png", "fit_speed.npz", "untrained.png", "metrics.json"):
        assert (out / name).is_file(), name
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["fit_speed"]["curves"]) == {"image", "image + noise", "shuffled pixels", "U(0, 1) noise"}
    assert set(m["untrained"]["nets"]) == set(why.untrained_nets()) and m["untrained"]["width"] == 8
    assert np.load(out / "fit_speed.npz")["image"].shape == (3,)
