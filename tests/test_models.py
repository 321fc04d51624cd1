"""Parameter counts (REFERENCE §1.8), shapes, sizes and argument checking of the skip family."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dip_jax import models

FEATURE_INVERSION = dict(
    num_input_channels=32,
    num_channels_down=[16, 32, 64, 128, 128, 128],
    num_channels_up=[16, 32, 64, 128, 128, 128],
    num_channels_skip=[4] * 6,
    filter_size_down=[7, 7, 5, 5, 3, 3],
    filter_size_up=[7, 7, 5, 5, 3, 3],
    upsample_mode="nearest",
    downsample_mode="avg",
    pad="zero",
)
ACTIVATION_MAXIMISATION = dict(
    num_input_channels=32,
    num_channels_down=[16, 32, 64, 128, 128, 128],
    num_channels_up=[16, 32, 64, 128, 128, 128],
    num_channels_skip=[0, 4, 4, 4, 4, 4],
    filter_size_down=[5, 3, 5, 5, 3, 5],
    filter_size_up=[5, 3, 5, 3, 5, 3],
    upsample_mode="bilinear",
    downsample_mode="avg",
    pad="reflection",
)

# (how the net is built, input channels, count from REFERENCE §1.8)
PARAM_COUNTS = [
    ("standard", lambda: models.get("standard"), 32, 2_217_831),
    ("standard_1_output", lambda: models.get("standard", n_channels=1), 32, 2_217_573),
    ("skip_in3", lambda: models.get_net(3, "skip"), 3, 2_184_307),
    ("text_inpainting", lambda: models.get("text_inpainting"), 32, 3_002_627),
    ("vase", lambda: models.get("vase"), 2, 2_157_955),
    ("skip_depth6", lambda: models.get("skip_depth6"), 1, 2_996_467),
    ("skip_depth4", lambda: models.get("skip_depth4"), 1, 1_060_339),
    ("skip_depth2", lambda: models.get("skip_depth2"), 1, 59_635),
    ("snail", lambda: models.get("snail"), 3, 572_827),
    ("restoration_kate", lambda: models.get("restoration_kate"), 32, 1_027_379),
    ("feature_inversion", lambda: models.skip(**FEATURE_INVERSION), 32, 2_606_763),
    ("activation_maximisation", lambda: models.skip(**ACTIVATION_MAXIMISATION), 32, 2_948_567),
    ("skip_defaults", lambda: models.skip(), 2, 1_037_375),
]


@pytest.mark.parametrize("name,build,channels,count", PARAM_COUNTS, ids=[p[0] for p in PARAM_COUNTS])
def test_param_counts_match_reference(name, build, channels, count):
    assert models.num_params(build(), (1, 128, 128, channels)) == count


def test_standard_net_level_arithmetic():
    # REFERENCE §1.8's arithmetic: level 0 = 354,708, levels 1-4 = 465,684 each, head 387.
    assert 354_708 + 4 * 465_684 + 387 == 2_217_831


@pytest.mark.parametrize("size", [(37, 51), (33, 64), (40, 17)])
def test_skip_net_keeps_odd_sizes(size):
    net = models.skip(num_input_channels=2, num_channels_down=[4, 4, 4], num_channels_up=[4, 4, 4],
                      num_channels_skip=[2, 2, 2], upsample_mode="bilinear", pad="reflection")
    out = jax.eval_shape(lambda z: net.init_with_output(jax.random.key(0), z)[0], jnp.zeros((1, *size, 2)))
    chex.assert_shape(out, (1, *size, 3))
    assert models.size_multiple(net) == 1


def test_hourglass_needs_a_multiple():
    net = models.hourglass([4, 4, 4], num_input_channels=2)
    assert models.size_multiple(net) == 8
    ok = jax.eval_shape(lambda z: net.init_with_output(jax.random.key(0), z)[0], jnp.zeros((1, 24, 40, 2)))
    chex.assert_shape(ok, (1, 24, 40, 3))
    bad = jax.eval_shape(lambda z: net.init_with_output(jax.random.key(0), z)[0], jnp.zeros((1, 25, 40, 2)))
    assert bad.shape[1] != 25
    # a level without skips above a level with them: only the skip-less levels must halve exactly
    snail = models.get("snail")
    assert models.size_multiple(snail) == 8


def test_min_input_size_and_level_sizes():
    net = models.get("standard")
    assert models.level_sizes(net, 514) == [514, 257, 129, 65, 33, 17]
    # the deepest features of 5 stride-2 levels are ceil(n / 32) pixels: 2 needs n >= 33
    assert models.min_input_size(net) == 33
    assert models.level_sizes(net, 33)[-1] == 2 and models.level_sizes(net, 32)[-1] == 1


def test_min_input_size_leaves_room_for_reflection_padding():
    # 5x5 convs reflection-pad by 2, which PyTorch allows only on inputs of 3 or more: the
    # deepest of the library figure's 6 levels (ceil(n / 64) pixels) needs n >= 129
    net = models.get("skip_depth6")
    assert models.min_input_size(net) == 129 and models.level_sizes(net, 129)[-1] == 3
    assert models.min_input_size(net.clone(pad="zero")) == 65  # zero padding: 2 pixels suffice
    # the skip conv counts too, at its level's size
    wide_skip = models.skip(num_channels_down=[4], num_channels_up=[4], num_channels_skip=[4], filter_skip_size=7,
                            pad="reflection")
    assert models.min_input_size(wide_skip) == 4 and models.min_input_size(wide_skip.clone(filter_skip_size=1)) == 3


@pytest.mark.parametrize("mode", ["stride", "avg", "max", "lanczos2", "lanczos3"])
def test_every_downsample_mode_builds_and_keeps_size(mode):
    net = models.skip(num_input_channels=2, num_channels_down=[4, 4], num_channels_up=[4, 4],
                      num_channels_skip=[2, 2], downsample_mode=mode, pad="reflection")
    z = jax.random.uniform(jax.random.key(0), (1, 16, 16, 2))
    out, _ = jax.jit(net.init_with_output)(jax.random.key(1), z)
    chex.assert_shape(out, (1, 16, 16, 3))
    assert np.all((np.asarray(out) > 0) & (np.asarray(out) < 1))  # the sigmoid head
    # the Lanczos kernel is a constant, never a parameter (REFERENCE §6.13)
    base = models.num_params(models.skip(num_input_channels=2, num_channels_down=[4, 4], num_channels_up=[4, 4],
                                         num_channels_skip=[2, 2], pad="reflection"), (1, 16, 16, 2))
    assert models.num_params(net, (1, 16, 16, 2)) == base


def test_init_is_deterministic_under_a_key():
    net = models.skip(num_input_channels=2, num_channels_down=[4, 4], num_channels_up=[4, 4], num_channels_skip=[2, 2])
    z = jnp.zeros((1, 8, 8, 2))
    a = net.init(jax.random.key(5), z)
    b = net.init(jax.random.key(5), z)
    c = net.init(jax.random.key(6), z)
    chex.assert_trees_all_equal(a, b)
    assert not np.array_equal(a["params"]["head"]["kernel"], c["params"]["head"]["kernel"])


def test_need_sigmoid_bias_and_1x1_options():
    kw = dict(num_input_channels=2, num_channels_down=[4, 4], num_channels_up=[4, 4], num_channels_skip=[2, 2])
    full = models.num_params(models.skip(**kw), (1, 8, 8, 2))
    no_bias = models.num_params(models.skip(need_bias=False, **kw), (1, 8, 8, 2))
    no_1x1 = models.num_params(models.skip(need1x1_up=False, **kw), (1, 8, 8, 2))
    # biases: 2 levels x (skip 2 + down 4 + 4 + up 4 + 1x1 4) + head 3
    assert full - no_bias == 2 * (2 + 4 + 4 + 4 + 4) + 3
    # 1x1 up blocks: conv 4*4+4 and BN 2*4, per level
    assert full - no_1x1 == 2 * (4 * 4 + 4 + 8)
    z = jnp.full((1, 8, 8, 2), 0.05)
    raw, _ = jax.jit(models.skip(need_sigmoid=False, act_fun="ELU", **kw).init_with_output)(jax.random.key(0), z)
    assert np.asarray(raw).min() < 0 or np.asarray(raw).max() > 1


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="equal lengths"):
        models.skip(num_channels_down=[4, 4], num_channels_up=[4], num_channels_skip=[2, 2])
    with pytest.raises(ValueError, match="unknown upsample_mode"):
        models.skip(upsample_mode="bicubic")
    with pytest.raises(ValueError, match="filter_size_down has 2 entries"):
        models.skip(filter_size_down=[3, 3])
    with pytest.raises(ValueError, match="unknown network"):
        models.get("resnet152")
    with pytest.raises(ValueError, match=r"expected z of shape \(N, H, W, 2\)"):
        models.skip().init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))


def test_remat_keeps_parameters_and_gradients():
    kw = dict(num_input_channels=4, num_channels_down=(8, 8), num_channels_up=(8, 8), num_channels_skip=(2, 0))
    plain, remat = models.skip(**kw), models.skip(remat=True, **kw)
    z = jax.random.uniform(jax.random.key(0), (1, 16, 16, 4))
    params = plain.init(jax.random.key(1), z)["params"]
    chex.assert_trees_all_equal(remat.init(jax.random.key(1), z)["params"], params)

    def loss(net):
        return jax.jit(jax.value_and_grad(lambda p: jnp.mean((net.apply({"params": p}, z) - 0.5) ** 2)))

    chex.assert_trees_all_close(loss(remat)(params), loss(plain)(params), rtol=1e-5, atol=1e-8)
    # the recomputation is in the program handed to XLA: one barrier per conv -> BN -> activation unit
    # (XLA's CPU compiler then removes them, which benchmarks/memory.py measures)
    units = 2 * 4 + 1  # per level: 2 down, 1 up, 1x1 up; plus the one level with a skip branch
    assert loss(remat).lower(params).as_text().count("optimization_barrier") == units
    assert "optimization_barrier" not in loss(plain).lower(params).as_text()
