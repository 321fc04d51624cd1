"""The architecture zoo: UNet, ResNet, texture_nets, Deep Decoder, ConvDecoder (REFERENCE §1.4-1.8).

Parameter counts are checked against REFERENCE §1.8 where the original builds, and against
layer-by-layer arithmetic written out here independently of the modules.
"""

import functools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import smooth_image

from dip_jax import fit, inputs, models, operators
from dip_jax.models import decoders, layers
from dip_jax.restore import InputConfig, make_code, padded_geometry
from experiments.configs import library_architectures


def run_once(fn, *args):
    """`fn(*args)` compiled with little optimisation: these tests run each computation once."""
    return fit.compile_once(fn, *args)(*args)


# ---------------------------------------------------------------------------------------------
# Parameter arithmetic, written from REFERENCE §1.4-1.6 and the decoders' papers.


def conv(cin, cout, k, bias=True):
    return cin * cout * k * k + (cout if bias else 0)


def norm(c, kind):
    return {"batch": 2 * c, "instance": 0, "none": 0}[kind]  # InstanceNorm2d: affine=False


def unet_count(nin, nout, feature_scale, more_layers, upsample_mode, norm_kind):
    f = [x // feature_scale for x in (64, 128, 256, 512, 1024)]

    def pair(cin, cout, kind):
        return conv(cin, cout, 3) + norm(cout, kind) + conv(cout, cout, 3) + norm(cout, kind)

    def up(num_filt, out):
        upsampler = conv(num_filt, out, 4) if upsample_mode == "deconv" else conv(num_filt, out, 3)
        return upsampler + pair(2 * out, out, "none")

    total = pair(nin, f[0], norm_kind) + sum(pair(f[i - 1], f[i], norm_kind) for i in range(1, 5))
    total += more_layers * (pair(f[4], f[4], norm_kind) + up(f[4], f[4]))
    total += sum(up(2 * f[i], f[i]) for i in range(4))
    return total + conv(f[0], nout, 1)


def resnet_count(nin, nout, blocks, c):
    block = 2 * conv(c, c, 3, bias=False) + 2 * norm(c, "batch")
    return conv(nin, c, 3) + blocks * block + conv(c, c, 3) + norm(c, "batch") + conv(c, nout, 3)


def texture_nets_count(nin, nout, num_ratios, n=8):
    def three(cin, c):
        return conv(cin, c, 3) + conv(c, c, 3) + conv(c, c, 1) + 3 * norm(c, "batch")

    total = num_ratios * three(nin, n)
    for j in range(2, num_ratios + 1):  # the merge BNs over the branch and the running result, then 3 blocks
        total += norm(n, "batch") + norm(n * (j - 1), "batch") + three(n * j, n * j)
    return total + conv(n * num_ratios, nout, 1)


def deep_decoder_count(nin, nout, widths):
    total, prev = 0, nin
    for w in widths:
        total += conv(prev, w, 1, bias=False) + norm(w, "batch")
        prev = w
    return total + conv(prev, nout, 1, bias=False)


def conv_decoder_count(nin, nout, num_layers, c, k=3, need_last=True):
    layer = conv(c, c, k, bias=False) + norm(c, "batch")
    first = conv(nin, c, k, bias=False) + norm(c, "batch")
    return first + (num_layers - 2 + need_last) * layer + conv(c, nout, 1, bias=False)


def test_arithmetic_reproduces_the_reference_counts():
    # REFERENCE §1.8, counted there with PyTorch; the arithmetic above must agree before it checks anything.
    assert unet_count(1, 3, 8, 1, "deconv", "instance") == 1_616_315
    assert unet_count(32, 3, 4, 0, "bilinear", "batch") == 2_164_899
    assert resnet_count(1, 3, 8, 32) == 158_979
    assert texture_nets_count(32, 3, 6) == 129_443


# (id, how the net is built, input channels, count from REFERENCE §1.8)
REFERENCE_COUNTS = [
    ("library_unet", lambda: models.get("library_unet"), 1, 1_616_315),
    ("get_net_unet", lambda: models.get_net(32, "UNet"), 32, 2_164_899),
    ("get_net_unet_nearest", lambda: models.get_net(32, "UNet", upsample_mode="nearest"), 32, 2_164_899),
    ("library_resnet", lambda: models.get("library_resnet"), 1, 158_979),
    ("ResNet_in1", lambda: models.get("ResNet", num_input_channels=1), 1, 158_979),
    ("texture_nets_in32", lambda: models.get("texture_nets", num_input_channels=32), 32, 129_443),
    ("get_net_texture_nets", lambda: models.get_net(32, "texture_nets"), 32, 129_443),
    ("skip_depth6", lambda: models.get("skip_depth6"), 1, 2_996_467),
    ("skip_depth4", lambda: models.get("skip_depth4"), 1, 1_060_339),
    ("skip_depth2", lambda: models.get("skip_depth2"), 1, 59_635),
]


@pytest.mark.parametrize("name,build,channels,count", REFERENCE_COUNTS, ids=[c[0] for c in REFERENCE_COUNTS])
def test_param_counts_match_reference(name, build, channels, count):
    assert models.num_params(build(), (1, 128, 128, channels)) == count


# (id, net, code shape, count from the arithmetic above)
ARITHMETIC_COUNTS = [
    ("unet_more2_deconv", models.UNet(num_input_channels=2, feature_scale=16, more_layers=2),
     (1, 128, 128, 2), unet_count(2, 3, 16, 2, "deconv", "instance")),
    ("unet_more3_bilinear_batch", models.UNet(num_input_channels=3, feature_scale=32, more_layers=3,
                                              upsample_mode="bilinear", norm_layer="batch"),
     (1, 256, 128, 3), unet_count(3, 3, 32, 3, "bilinear", "batch")),
    ("unet_no_norm", models.UNet(num_input_channels=1, num_output_channels=1, feature_scale=16, norm_layer="none"),
     (1, 32, 32, 1), unet_count(1, 1, 16, 0, "deconv", "none")),
    ("resnet_small", models.ResNet(num_input_channels=5, num_output_channels=1, num_blocks=3, num_channels=12),
     (1, 9, 9, 5), resnet_count(5, 1, 3, 12)),
    ("texture_nets_3", models.TextureNets(num_input_channels=4, num_output_channels=1, ratios=(4, 2, 1)),
     (1, 16, 16, 4), texture_nets_count(4, 1, 3)),
    ("deep_decoder_default", models.get("deep_decoder"), (1, 4, 4, 128), deep_decoder_count(128, 3, [128] * 6)),
    ("deep_decoder_widths", models.DeepDecoder(num_input_channels=7, num_channels=(16, 12, 8)),
     (1, 4, 4, 7), deep_decoder_count(7, 3, [16, 12, 8])),
    ("conv_decoder_default", models.get("conv_decoder", output_size=(64, 48)),
     (1, 16, 16, 64), conv_decoder_count(64, 3, 6, 64)),
    ("conv_decoder_no_last", models.ConvDecoder(num_input_channels=5, num_channels=9, num_layers=4, need_last=False,
                                                output_size=(20, 30), input_size=(4, 4)),
     (1, 4, 4, 5), conv_decoder_count(5, 3, 4, 9, need_last=False)),
]


@pytest.mark.parametrize("name,net,shape,count", ARITHMETIC_COUNTS, ids=[c[0] for c in ARITHMETIC_COUNTS])
def test_param_counts_match_arithmetic(name, net, shape, count):
    assert models.num_params(net, shape) == count


def test_deep_decoder_has_fewer_weights_than_pixels():
    net = models.get("deep_decoder")
    count = models.num_params(net, (1, 16, 16, net.num_input_channels))
    assert count == 6 * (128 * 128 + 2 * 128) + 128 * 3 == 100_224
    # the paper's 512x512 images: 262,144 pixels (786,432 values in colour)
    assert count < 512 * 512
    # 1x1 convs only: the count does not grow with the image
    assert models.num_params(net, (1, 32, 48, net.num_input_channels)) == count


# ---------------------------------------------------------------------------------------------
# Shapes: odd sizes where the architecture keeps them, a ValueError where it cannot.


def output_shape(net, code_shape):
    return jax.eval_shape(lambda z: net.init_with_output(jax.random.key(0), z)[0], jnp.zeros(code_shape)).shape


TINY_UNET = dict(num_input_channels=2, feature_scale=16)

SHAPES = [
    ("unet", models.UNet(**TINY_UNET), (1, 48, 80, 2), (1, 48, 80, 3)),
    ("unet_more2", models.UNet(more_layers=2, **TINY_UNET), (1, 64, 128, 2), (1, 64, 128, 3)),
    ("unet_concat_x", models.UNet(concat_x=True, upsample_mode="nearest", **TINY_UNET), (1, 32, 48, 2),
     (1, 32, 48, 3)),
    ("resnet_odd", models.ResNet(num_input_channels=2, num_blocks=2, num_channels=4), (1, 37, 51, 2), (1, 37, 51, 3)),
    ("texture_nets", models.TextureNets(num_input_channels=2, ratios=(4, 2, 1)), (1, 36, 52, 2), (1, 36, 52, 3)),
    ("deep_decoder_odd_code", models.DeepDecoder(num_input_channels=8, num_channels=(8, 8, 8)), (1, 5, 7, 8),
     (1, 20, 28, 3)),
    ("conv_decoder_odd", models.ConvDecoder(num_input_channels=8, num_channels=8, input_size=(4, 4),
                                            output_size=(37, 51)), (1, 4, 4, 8), (1, 37, 51, 3)),
    ("conv_decoder_nearest", models.ConvDecoder(num_input_channels=8, num_channels=8, upsample_mode="nearest",
                                                output_size=(17, 5)), (1, 3, 2, 8), (1, 17, 5, 3)),
]


@pytest.mark.parametrize("name,net,code,expected", SHAPES, ids=[s[0] for s in SHAPES])
def test_output_shapes(name, net, code, expected):
    chex.assert_shape(jax.ShapeDtypeStruct(output_shape(net, code), jnp.float32), expected)


@pytest.mark.parametrize(
    "net,code,match",
    [
        (models.UNet(**TINY_UNET), (1, 37, 51, 2), "divisible by 16, got 37x51"),
        (models.UNet(more_layers=1, **TINY_UNET), (1, 48, 64, 2), "divisible by 32, got 48x64"),
        (models.TextureNets(num_input_channels=2, ratios=(4, 2, 1)), (1, 37, 52, 2), "divisible by 4, got 37x52"),
        (models.ConvDecoder(num_input_channels=8), (1, 4, 4, 8), "needs output_size"),
        (models.ResNet(num_input_channels=2), (1, 8, 8, 3), r"expected z of shape \(N, H, W, 2\)"),
    ],
    ids=["unet", "unet_more1", "texture_nets", "conv_decoder_no_size", "resnet_channels"],
)
def test_sizes_a_net_cannot_keep_raise(net, code, match):
    with pytest.raises(ValueError, match=match):
        output_shape(net, code)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="unknown upsample_mode 'bicubic'"):
        models.UNet(upsample_mode="bicubic")
    with pytest.raises(ValueError, match="unknown norm_layer"):
        models.ResNet(norm_layer="none")
    with pytest.raises(ValueError, match="ratios must halve"):
        models.TextureNets(ratios=(8, 2, 1))
    with pytest.raises(ValueError, match="more_layers must be >= 0"):
        models.UNet(more_layers=-1)
    with pytest.raises(ValueError, match="leaves no channels"):
        models.UNet(feature_scale=128)
    with pytest.raises(TypeError, match="no size rule for Dense"):
        models.size_multiple(nn.Dense(3))


# (registry name, size_multiple, min_input_size): from each architecture's levels
GEOMETRY = [
    ("skip", 1, 33),
    ("hourglass", 32, 33),
    ("UNet", 16, 32),
    ("ResNet", 1, 2),
    ("texture_nets", 32, 64),
    ("deep_decoder", 32, 64),
    ("conv_decoder", 1, 2),
    # 5x5 reflection-padded convs: the deepest level needs 3 pixels
    ("skip_depth6", 64, 129),
    ("skip_depth4", 16, 33),
    ("skip_depth2", 4, 9),
    ("library_unet", 32, 64),
    ("library_resnet", 1, 2),
]


@pytest.mark.parametrize("name,multiple,smallest", GEOMETRY, ids=[g[0] for g in GEOMETRY])
def test_registry_and_size_rules(name, multiple, smallest):
    net = models.get(name)
    assert name in models.names()
    assert isinstance(net.num_input_channels, int) and net.num_output_channels == 3
    assert models.size_multiple(net) == multiple
    assert models.min_input_size(net) == smallest


@pytest.mark.parametrize(
    "net,image,padded,code",
    [
        (models.UNet(**TINY_UNET), (37, 51), (48, 64), (48, 64)),
        (models.ResNet(num_input_channels=2), (37, 51), (37, 51), (37, 51)),
        (models.TextureNets(num_input_channels=2, ratios=(4, 2, 1)), (37, 51), (40, 52), (40, 52)),
        (models.DeepDecoder(num_input_channels=2, num_channels=(4, 4, 4, 4)), (37, 51), (40, 56), (5, 7)),
        (models.ConvDecoder(num_input_channels=2, input_size=(6, 4), output_size=(37, 51)), (37, 51), (37, 51), (6, 4)),
    ],
    ids=["unet", "resnet", "texture_nets", "deep_decoder", "conv_decoder"],
)
def test_restore_makes_the_code_each_net_needs(net, image, padded, code):
    ph, pw, crop = padded_geometry(net, *image)
    assert (ph, pw) == padded
    z, crop2 = make_code(jax.random.key(0), net, *image, InputConfig("noise", 2))
    chex.assert_shape(z, (1, *code, 2))
    assert crop2 == crop
    # the net's output covers the padded size, which the crop brings back to the image's
    assert output_shape(net, z.shape)[1:3] == padded


def test_restore_errors_name_the_architecture():
    with pytest.raises(ValueError, match="too small for the net's 5 levels: each side must be at least 64"):
        padded_geometry(models.get("library_unet"), 20, 200)  # 20 pads to 32 < 64
    with pytest.raises(ValueError, match="build it with output_size=\\(30, 40\\)"):
        make_code(jax.random.key(0), models.ConvDecoder(output_size=(32, 32)), 30, 40, InputConfig("noise", 64))
    with pytest.raises(ValueError, match="an image code needs"):
        make_code(jax.random.key(0), models.DeepDecoder(num_input_channels=3), 64, 64, InputConfig("image", 3),
                  jnp.zeros((64, 64, 3)))


def test_conv_decoder_sizes_grow_geometrically():
    # 8 -> 512 over 6 resampling steps: a factor of 2 per layer (ceil absorbs float error upwards)
    # 8x4 -> 512x256 over 6 resampling layers: a factor of 2 per layer
    assert decoders.hidden_sizes((8, 4), (512, 256), 7) == [(16, 8), (32, 16), (64, 32), (128, 64), (256, 128),
                                                           (512, 256)]
    # 16 -> 37: factor 1.3228 per layer, 21.2 -> 22 and 28.0 -> 28; 16 -> 51: 1.4720, 23.6 -> 24 and 34.7 -> 35
    assert decoders.hidden_sizes((16, 16), (37, 51), 4) == [(22, 24), (28, 35), (37, 51)]
    assert decoders.hidden_sizes((16, 16), (37, 51), 2) == [(37, 51)]
    sizes = decoders.hidden_sizes((10, 10), (1000, 10), 3)
    assert sizes == [(100, 10), (1000, 10)]


# ---------------------------------------------------------------------------------------------
# The new layers, against independent numpy computations.


def scatter_conv_transpose(x, w, s, p):
    """PyTorch's definition: input pixel i adds x[i] * w[t] to output s * i - p + t."""
    n, h, width, _ = x.shape
    k = w.shape[0]
    full = np.zeros((n, s * (h - 1) + k, s * (width - 1) + k, w.shape[-1]))
    for i in range(h):
        for j in range(width):
            full[:, s * i : s * i + k, s * j : s * j + k] += np.einsum("nc,klco->nklo", x[:, i, j], w)
    return full[:, p : p + s * (h - 1) + k - 2 * p, p : p + s * (width - 1) + k - 2 * p]


@pytest.mark.parametrize("k,s,p", [(4, 2, 1), (3, 2, 0), (5, 3, 2), (3, 2, 1), (2, 3, 0), (1, 2, 0), (3, 1, 1)])
def test_conv_transpose_matches_the_scatter_definition(k, s, p):
    rng = np.random.default_rng(k * 100 + s * 10 + p)
    x, w = rng.normal(size=(1, 3, 5, 2)), rng.normal(size=(k, k, 2, 3))
    y = run_once(functools.partial(layers.conv_transpose, stride=s, padding=p), jnp.asarray(x, jnp.float32),
                 jnp.asarray(w, jnp.float32))
    np.testing.assert_allclose(np.asarray(y), scatter_conv_transpose(x, w, s, p), rtol=1e-5, atol=1e-5)


def test_conv_transpose_layer_has_bias_and_pytorch_init():
    x = jax.random.normal(jax.random.key(0), (1, 3, 5, 6))
    layer = layers.ConvTranspose(4, kernel_size=4, stride=2, padding=1)
    variables = run_once(layer.init, jax.random.key(1), x)
    y = np.asarray(run_once(layer.apply, variables, x))
    w, b = np.asarray(variables["params"]["kernel"]), np.asarray(variables["params"]["bias"])
    np.testing.assert_allclose(y, scatter_conv_transpose(np.asarray(x), w, 2, 1) + b, rtol=1e-5, atol=1e-5)
    chex.assert_shape(y, (1, 6, 10, 4))

    # PyTorch >= 1.0: fan_in from the weight's second dim (out channels): bound 1/sqrt(out * k * k)
    wide = run_once(layers.ConvTranspose(8, 4).init, jax.random.key(2), jnp.zeros((1, 2, 2, 64)))["params"]
    bound_out, bound_in = 1 / np.sqrt(8 * 16), 1 / np.sqrt(64 * 16)
    kernel = np.abs(np.asarray(wide["kernel"]))
    assert kernel.max() <= bound_out and kernel.max() > 2 * bound_in
    assert np.abs(np.asarray(wide["bias"])).max() <= bound_out


def test_instance_norm_is_per_sample_and_has_no_parameters_by_default():
    x = jax.random.normal(jax.random.key(0), (2, 5, 6, 3)) * jnp.array([1.0, 3.0, 0.5]) + 2.0
    variables = layers.InstanceNorm().init(jax.random.key(1), x)
    assert not jax.tree_util.tree_leaves(variables)
    y = np.asarray(run_once(layers.InstanceNorm().apply, variables, x))
    xn = np.asarray(x, np.float64)
    mean = xn.mean(axis=(1, 2), keepdims=True)
    var = xn.var(axis=(1, 2), keepdims=True)  # biased, as PyTorch normalises
    np.testing.assert_allclose(y, (xn - mean) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-5)
    affine = layers.InstanceNorm(affine=True).init(jax.random.key(1), x)["params"]
    assert affine["scale"].shape == (3,) and affine["bias"].shape == (3,)


def torch_bilinear_1d(n_in, n_out):
    """The interpolation matrix of PyTorch's bilinear, align_corners=False, along one axis."""
    m = np.zeros((n_out, n_in))
    for o in range(n_out):
        src = max((o + 0.5) * n_in / n_out - 0.5, 0.0)
        i0 = int(np.floor(src))
        i1 = min(i0 + 1, n_in - 1)
        lam = src - i0
        m[o, i0] += 1 - lam
        m[o, i1] += lam
    return m


@pytest.mark.parametrize("size_in,size_out", [((5, 3), (8, 7)), ((4, 4), (4, 9)), ((6, 5), (13, 5))])
def test_resize_matches_pytorch_formulas(size_in, size_out):
    x = np.asarray(jax.random.uniform(jax.random.key(0), (1, *size_in, 2)))
    near = np.asarray(layers.resize(jnp.asarray(x), size_out, "nearest"))
    rows = [int(np.floor(i * size_in[0] / size_out[0])) for i in range(size_out[0])]
    cols = [int(np.floor(j * size_in[1] / size_out[1])) for j in range(size_out[1])]
    np.testing.assert_array_equal(near, x[:, rows][:, :, cols])
    bil = np.asarray(layers.resize(jnp.asarray(x), size_out, "bilinear"))
    expected = np.einsum("ai,bj,nijc->nabc", torch_bilinear_1d(size_in[0], size_out[0]),
                         torch_bilinear_1d(size_in[1], size_out[1]), x)
    np.testing.assert_allclose(bil, expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Options that change what the net computes.


def test_resnet_sigmoid_and_residual_are_options():
    z = jax.random.uniform(jax.random.key(0), (1, 8, 8, 2))
    kw = dict(num_input_channels=2, num_blocks=2, num_channels=4)
    nets = [models.ResNet(**kw), models.ResNet(need_sigmoid=False, **kw), models.ResNet(need_residual=False, **kw)]
    assert len({models.num_params(net, z.shape) for net in nets}) == 1  # the options add no parameters

    def outputs(key, z):  # one compilation for the three variants, on the same parameters
        params = nets[0].init(key, z)
        return [net.apply(params, z) for net in nets]

    out, raw, plain = [np.asarray(o) for o in run_once(outputs, jax.random.key(1), z)]
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-raw)), rtol=1e-5, atol=1e-6)
    assert raw.min() < 0 or raw.max() > 1
    assert not np.allclose(out, plain, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# A short fit lowers the loss, for every architecture.

SIZE = 32
FIT_NETS = [
    ("unet_deconv_instance", models.UNet(num_input_channels=2, feature_scale=16)),
    ("resnet", models.ResNet(num_input_channels=2, num_blocks=2, num_channels=8)),
    ("texture_nets", models.TextureNets(num_input_channels=2, ratios=(4, 2, 1), conv_num=4, need_sigmoid=True)),
    ("deep_decoder", models.DeepDecoder(num_input_channels=8, num_channels=(8, 8, 8, 8))),
    ("conv_decoder", models.ConvDecoder(num_input_channels=8, num_channels=8, num_layers=4, input_size=(4, 4),
                                        output_size=(SIZE, SIZE))),
]


@pytest.fixture(scope="module")
def smooth():
    return smooth_image(SIZE)


@pytest.mark.parametrize("name,net", FIT_NETS, ids=[n[0] for n in FIT_NETS])
def test_a_short_fit_lowers_the_loss(name, net, smooth):
    code_h, code_w = models.code_size(net, SIZE, SIZE)
    z = inputs.noise(jax.random.key(1), code_h, code_w, net.num_input_channels)
    config = fit.FitConfig(num_iter=30, lr=0.01, reg_noise_std=0.0, ema_decay=None)
    result = fit.fit(net, z, smooth, operators.Denoising(25.0), config, jax.random.key(0))
    loss = result.history["loss"]
    assert np.all(np.isfinite(loss))
    assert loss[-1] < 0.7 * loss[0], (loss[0], loss[-1])
    chex.assert_shape(result.final, (SIZE, SIZE, 3))


# ---------------------------------------------------------------------------------------------
# The CLI side: building nets from a config, the Fig. 8 config, --net.


@pytest.mark.parametrize("name", models.names())
def test_build_gives_every_net_the_code_and_image_channels(name):
    """One signature for every registry entry: input depth from the code, output from the image."""
    channels = 3 if name == "pixels" else 4  # a pixel image outputs its input
    net = models.build(name, channels, 3 if name == "pixels" else 1, (37, 51))
    assert (net.num_input_channels, net.num_output_channels) == (channels, 3 if name == "pixels" else 1)
    if name == "conv_decoder":
        assert net.output_size == (37, 51)


def test_build_keeps_the_figures_other_settings():
    assert models.build("standard", 32, 3) == models.get("standard")
    assert models.build("vase", 2, 3) == models.get("vase")
    assert models.build("skip_depth6", 1, 3) == models.get("skip_depth6")
    assert models.build("standard", 32, 3, upsample_mode="nearest").upsample_mode == "nearest"


def test_build_errors_name_the_argument():
    with pytest.raises(ValueError, match="'UNet' does not take the argument 'remat'"):
        models.build("UNet", 3, 3, remat=True)
    assert models.build("standard", 32, 3, remat=True).remat
    with pytest.raises(ValueError, match="makes one output size"):
        models.build("conv_decoder", 3, 3)
    with pytest.raises(ValueError, match="unknown network"):
        models.build("vgg", 3, 3)


LIBRARY = [
    ("skip_depth6", 0.01, 2_996_467),
    ("skip_depth4", 0.01, 1_060_339),
    ("skip_depth2", 0.01, 59_635),
    ("library_unet", 0.001, 1_616_315),
    ("library_resnet", 0.001, 158_979),
]


@pytest.mark.parametrize("name,lr,count", LIBRARY, ids=[x[0] for x in LIBRARY])
def test_library_config_is_the_figure(name, lr, count):
    c = library_architectures.get_config(name)
    assert (c.net, c.fit.lr, c.fit.num_iter, c.fit.reg_noise_std) == (name, lr, 3001, 0.0)
    assert (c.task, c.input.kind, c.input.channels, c.fit.final_input) == ("inpaint", "noise", 1, "clean")
    assert c.image.endswith("inpainting/library.png") and c.mask.endswith("inpainting/library_mask.png")
    net = models.build(c.net, c.input.channels, 3, (448, 704), **c.net_overrides.to_dict())
    assert models.num_params(net, (1, 64, 64, 1)) == count
    padded_geometry(net, 448, 704)  # the image fits every net of the figure without error


def test_unknown_net_names_are_refused_before_any_work():
    from experiments import problems
    from experiments.configs import common

    config = common.base_config()
    config.net = "no_such_net"
    with pytest.raises(problems.ConfigError, match="unknown net 'no_such_net'"):
        problems.validate(config)
