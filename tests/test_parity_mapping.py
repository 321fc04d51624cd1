"""Weights between the original's state_dicts and dip-jax's Flax trees (benchmarks/reference.py), without torch.

`data/original_state_dict_shapes.json` holds the names and shapes of the state_dicts of the
original's own nets, one per network that `benchmarks.parity` checks, written by
`python -m benchmarks.parity --reference_dir=<checkout> --write_shapes=tests/data/original_state_dict_shapes.json`
(BatchNorm's running statistics left out).
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import reference
from benchmarks.parity_lib import NET_CASES, by_path, check_size
from dip_jax import models

with open(os.path.join(os.path.dirname(__file__), "data", "original_state_dict_shapes.json")) as _f:
    ORIGINAL_SHAPES = json.load(_f)


def flax_shapes(net, size=None) -> dict:
    """{path: shape} of the net's Flax params, from shapes only."""
    size = size or check_size(net, 16)
    params = jax.eval_shape(net.init, jax.random.key(0), jnp.zeros((1, size, size, net.num_input_channels)))["params"]
    return {tuple(k.key for k in path): tuple(x.shape) for path, x in jax.tree_util.tree_flatten_with_path(params)[0]}


def test_every_checked_net_has_its_original_state_dict():
    assert set(ORIGINAL_SHAPES) == {case.name for case in NET_CASES}


@pytest.mark.parametrize("case", NET_CASES, ids=lambda c: c.name)
def test_original_state_dict_fills_every_flax_leaf_once(case):
    net = case.ours()
    original = {name: np.zeros(shape, np.float32) for name, shape in ORIGINAL_SHAPES[case.name]}
    params = reference.to_flax(net, original)  # raises on any entry that no layer takes
    assert {k: v.shape for k, v in by_path(params).items()} == flax_shapes(net)
    # one state_dict entry per Flax leaf: nothing is read twice (the downsampler's kernel is not a parameter here)
    assert len(by_path(params)) == sum(not reference.is_ignored(name) for name in original)


@pytest.mark.parametrize("case", NET_CASES, ids=lambda c: c.name)
def test_round_trip_keeps_every_value(case):
    net = case.ours()
    rng = np.random.default_rng(0)
    original = {name: rng.normal(size=shape).astype(np.float32) for name, shape in ORIGINAL_SHAPES[case.name]
                if not reference.is_ignored(name)}
    back = reference.to_torch(net, reference.to_flax(net, original))
    assert back.keys() == original.keys()
    for name, value in original.items():
        np.testing.assert_array_equal(back[name], value, err_msg=name)


def random_params(net, size: int) -> dict:
    shapes = jax.eval_shape(net.init, jax.random.key(0), jnp.zeros((1, size, size, net.num_input_channels)))["params"]
    rng = np.random.default_rng(0)
    return jax.tree_util.tree_map(lambda s: rng.normal(size=s.shape).astype(np.float32), shapes)


def test_layouts():
    net = models.skip(num_input_channels=2, num_channels_down=(3,), num_channels_up=(5,), num_channels_skip=(0,),
                      pad="zero")
    params = random_params(net, 8)
    tensors = reference.to_torch(net, params)
    # the down conv (no pad module with zero padding): PyTorch (out, in, kh, kw) is Flax (kh, kw, in, out)
    assert tensors["1.1.0.weight"].shape == (3, 2, 3, 3)
    assert tensors["1.1.0.weight"][2, 1, 0, 2] == params["Conv_0"]["conv"]["kernel"][0, 2, 1, 2]
    # the merge BN: weight and bias are scale and bias
    np.testing.assert_array_equal(tensors["2.weight"], params["BatchNorm_2"]["scale"])
    np.testing.assert_array_equal(tensors["2.bias"], params["BatchNorm_2"]["bias"])
    # a transposed conv: PyTorch (in, out, kh, kw) is Flax (kh, kw, in, out), the taps not flipped
    unet = models.get("library_unet")
    original = {name: np.zeros(shape, np.float32) for name, shape in ORIGINAL_SHAPES["library_unet"]}
    deconv = np.arange(128 * 128 * 4 * 4, dtype=np.float32).reshape(128, 128, 4, 4)
    original["more_ups.0.up.weight"] = deconv
    assert reference.to_flax(unet, original)["ConvTranspose_0"]["kernel"][1, 3, 5, 7] == deconv[5, 7, 1, 3]


def test_unknown_and_missing_entries_are_errors():
    case = NET_CASES[0]
    net = case.ours()
    original = {name: np.zeros(shape, np.float32) for name, shape in ORIGINAL_SHAPES[case.name]}
    original["1.2.running_mean"] = np.zeros(4)  # BatchNorm buffers are never read
    reference.to_flax(net, original)
    with pytest.raises(ValueError, match="no Flax counterpart.*extra.weight"):
        reference.to_flax(net, {**original, "extra.weight": np.zeros(1)})
    del original["1.0.1.1.weight"]
    with pytest.raises(KeyError, match="1.0.1.1.weight"):
        reference.to_flax(net, original)


@pytest.mark.parametrize("net", [
    models.skip(num_input_channels=2, num_channels_down=(4, 8), num_channels_up=(4, 8), num_channels_skip=(2, 0),
                pad="reflection", upsample_mode="bilinear"),
    models.skip(num_input_channels=2, num_channels_down=(4, 8), num_channels_up=(4, 8), num_channels_skip=(2, 2),
                pad="zero", downsample_mode="avg"),
    models.TextureNets(num_input_channels=2, ratios=(4, 2, 1), pad="reflection"),
    models.UNet(num_input_channels=1, feature_scale=16, norm_layer="batch"),
    models.ResNet(num_input_channels=1, num_blocks=1, num_channels=4),
], ids=["skip_reflection", "skip_zero_avg", "texture_nets", "unet_batch", "resnet"])
def test_cancelled_biases_have_no_gradient(net):
    """What `Layer.bias_cancelled` claims: those biases do not change the output, so their gradient is ~0."""
    size = check_size(net, 16)
    key_init, key_z, key_y = jax.random.split(jax.random.key(0), 3)
    z = jax.random.uniform(key_z, (1, size, size, net.num_input_channels), maxval=0.1)
    params = net.init(key_init, z)["params"]
    params = jax.tree_util.tree_map(lambda p: p + 0.1 * jax.random.normal(key_y, p.shape), params)  # nonzero betas
    y = jax.random.uniform(key_y, net.apply({"params": params}, z).shape)
    grads = by_path(jax.grad(lambda p: jnp.mean(jnp.square(net.apply({"params": p}, z) - y)))(params))
    largest = max(float(jnp.max(jnp.abs(g))) for g in grads.values())
    cancelled = reference.cancelled_biases(net)
    assert cancelled and cancelled <= grads.keys()
    for path in cancelled:
        assert float(jnp.max(jnp.abs(grads[path]))) < 1e-4 * largest, path
    # and nothing else is: every other bias moves the output
    for path, g in grads.items():
        if path[-1] == "bias" and path not in cancelled:
            assert float(jnp.max(jnp.abs(g))) > 1e-4 * largest, path
