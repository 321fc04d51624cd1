"""AlexNet (Caffe) and VGG loaders: random weights saved in each layout land where they belong.

The activations are compared with independent numpy computations from the saved arrays: a
conv's output at a few pixels (with the Caffe preprocessing by hand), LRN, a grouped conv, and
the fc layers from the previous layer's activations (which checks PyTorch's CHW flattening).
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import FakeTorchModule

from dip_jax import classifiers
from dip_jax.classifiers import pth, sequential

CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)


def _fc_inputs(layers, input_size):
    """The flattened size before fc6, from a shape evaluation of the conv part."""
    net = sequential.SequentialNet(layers=layers)
    x = jnp.zeros((1, *input_size, 3))
    params = jax.eval_shape(lambda: net.init(jax.random.key(0), x, layer="pool5"))
    return int(np.prod(jax.eval_shape(lambda p: net.apply(p, x, layer="pool5"), params).shape[1:]))


def _weights(rng, layers, input_size):
    flat = _fc_inputs(layers, input_size)
    weights = {}
    c = 3
    previous = flat
    for spec in layers:
        if spec.kind == "conv":
            shape = (spec.features, c // spec.groups, spec.kernel, spec.kernel)
            c = spec.features
        elif spec.kind == "fc":
            shape = (spec.features, previous)
            previous = spec.features
        else:
            continue
        fan_in = int(np.prod(shape[1:]))
        weights[spec.name] = ((rng.standard_normal(shape, dtype=np.float32) / np.sqrt(fan_in)).astype(np.float32),
                              (0.1 * rng.standard_normal(shape[0], dtype=np.float32)).astype(np.float32))
    return weights


def _named_state_dict(weights):
    return {f"{name}.{kind}": array for name, (weight, bias) in weights.items()
            for kind, array in (("weight", weight), ("bias", bias))}


def _conv_at(x, weight, bias, row, col, stride, padding, groups=1):
    """One output pixel of a PyTorch conv (x HWC, weight (O, I/g, k, k)), all output channels."""
    k = weight.shape[-1]
    xp = np.pad(x, ((padding, padding), (padding, padding), (0, 0)))
    patch = xp[row * stride : row * stride + k, col * stride : col * stride + k]  # (k, k, C)
    out_per_group, in_per_group = weight.shape[0] // groups, weight.shape[1]
    result = np.empty(weight.shape[0], np.float64)
    for o in range(weight.shape[0]):
        g = o // out_per_group
        p = patch[:, :, g * in_per_group : (g + 1) * in_per_group]
        result[o] = np.sum(p.transpose(2, 0, 1) * weight[o]) + bias[o]
    return result


def _caffe_input(image):
    return image[..., ::-1] * 255.0 - CAFFE_MEAN_BGR


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory):
    """The original's layout: a pickled nn.Sequential with named children, in the legacy format."""
    rng = np.random.default_rng(0)
    weights = _weights(rng, sequential.alexnet_layers(), (227, 227))
    children = []
    for spec in sequential.alexnet_layers():
        if spec.name in weights:
            w, b = weights[spec.name]
            kind = "conv.Conv2d" if spec.kind == "conv" else "linear.Linear"
            children.append((spec.name, FakeTorchModule(f"torch.nn.modules.{kind}", [("weight", w), ("bias", b)])))
        elif spec.kind == "lrn":
            children.append((spec.name, FakeTorchModule("torch.nn.modules.normalization.LocalResponseNorm",
                                                        size=5, alpha=1e-4, beta=0.75, k=1.0)))
        else:
            children.append((spec.name, FakeTorchModule("torch.nn.modules.activation.ReLU")))
    path = str(tmp_path_factory.mktemp("alexnet") / "alexnet-torch_py3.pth")
    pth.save(path, FakeTorchModule("torch.nn.modules.container.Sequential", modules=children), legacy=True)
    return path, weights


def test_alexnet_caffe_weights_land_in_place(alexnet_file):
    path, weights = alexnet_file
    net = classifiers.get("alexnet_caffe", path)
    assert [s.groups for s in net.net.layers if s.kind == "conv"] == [1, 2, 1, 2, 2]  # read off the shapes
    assert net.preprocessing == classifiers.CAFFE and net.input_size == (227, 227)
    image = np.random.default_rng(1).uniform(size=(227, 227, 3)).astype(np.float32)
    layers = ("conv1", "norm1", "pool1", "conv2", "pool5", "torch_view", "fc6", "relu7", "fc8")
    # the weights go in as arguments: closed over, they would be compiled in as constants (slow)
    outputs = jax.jit(lambda c, x: [c.activations(x, n) for n in layers])(net, image)
    acts = {name: np.asarray(a) for name, a in zip(layers, outputs, strict=True)}
    chex.assert_shape([acts["conv1"], acts["pool5"], acts["fc8"]], [(55, 55, 96), (6, 6, 256), (1000,)])
    x = _caffe_input(image)
    w1, b1 = weights["conv1"]
    for row, col in ((0, 0), (30, 17), (54, 54)):  # stride 4, no padding
        np.testing.assert_allclose(acts["conv1"][row, col], _conv_at(x, w1, b1, row, col, 4, 0), rtol=2e-4, atol=2e-3)
    # LRN across 5 channels with alpha 1e-4, beta 0.75, k 1, after the ReLU
    r = np.maximum(acts["conv1"], 0.0)[20, 20]
    sums = np.array([np.sum(np.square(r[max(c - 2, 0) : c + 3])) for c in range(96)])
    np.testing.assert_allclose(acts["norm1"][20, 20], r / (1 + 1e-4 / 5 * sums) ** 0.75, rtol=1e-5)
    # conv2 is two towers: output channel o sees only its half of the 96 input channels
    w2, b2 = weights["conv2"]
    np.testing.assert_allclose(acts["conv2"][13, 5], _conv_at(acts["pool1"], w2, b2, 13, 5, 1, 2, groups=2),
                               rtol=2e-4, atol=2e-3)
    # torch_view flattens (C, H, W); fc6 and fc8 are x W^T + b
    np.testing.assert_allclose(acts["torch_view"], acts["pool5"].transpose(2, 0, 1).reshape(-1))
    w6, b6 = weights["fc6"]
    np.testing.assert_allclose(acts["fc6"], w6 @ acts["torch_view"] + b6, rtol=1e-4, atol=1e-4)
    w8, b8 = weights["fc8"]
    np.testing.assert_allclose(acts["fc8"], w8 @ acts["relu7"] + b8, rtol=1e-4, atol=1e-4)


def test_alexnet_takes_224_as_the_feature_inversion_notebook_does(alexnet_file):
    """Caffe's ceil-mode pooling brings 224x224 inputs to the same 6x6 pool5 as 227x227."""
    net = classifiers.get("alexnet_caffe", alexnet_file[0])
    shape = jax.eval_shape(lambda x: net.activations(x, "fc6"), jnp.zeros((224, 224, 3))).shape
    assert shape == (4096,)


SMALL_VGG = dict(widths=(4, 4, 8, 8, 8), fc_width=16, num_classes=10)
TORCHVISION_FEATURES = {16: [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28],
                        19: [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]}


def _vgg_file(tmp_path, depth, layout, weights, layers):
    conv_names = [s.name for s in layers if s.kind == "conv"]
    fc_names = [s.name for s in layers if s.kind == "fc"]
    path = str(tmp_path / f"vgg{depth}-{layout}.pth")
    if layout == "torchvision":  # model.state_dict() of torchvision.models.vgg{depth}, zip layout
        sd = {}
        for i, name in zip(TORCHVISION_FEATURES[depth], conv_names, strict=True):
            sd[f"features.{i}.weight"], sd[f"features.{i}.bias"] = weights[name]
        for i, name in zip((0, 3, 6), fc_names, strict=True):
            sd[f"classifier.{i}.weight"], sd[f"classifier.{i}.bias"] = weights[name]
        pth.save(path, sd)
    elif layout == "names":  # the original's vgg19-caffe-py3.pth: a state dict with its layer names
        pth.save(path, _named_state_dict(weights))
    else:  # the original's vgg16-caffe-py3.pth: a pickled nn.Sequential with numbered children, legacy layout
        children = []
        for i, spec in enumerate(layers):
            params = list(zip(("weight", "bias"), weights[spec.name], strict=True)) if spec.name in weights else []
            children.append((str(i), FakeTorchModule("torch.nn.modules.module.Module", params)))
        pth.save(path, FakeTorchModule("torch.nn.modules.container.Sequential", modules=children), legacy=True)
    return path


@pytest.mark.parametrize("depth,layout", [(16, "torchvision"), (19, "names"), (16, "numbered")])
def test_vgg_weights_land_in_place(tmp_path, depth, layout):
    layers = sequential.vgg_layers(depth, **SMALL_VGG)
    weights = _weights(np.random.default_rng(depth), layers, (32, 32))
    path = _vgg_file(tmp_path, depth, layout, weights, layers)
    net = sequential.load_sequential(path, layers, name=f"vgg{depth}", preprocessing=classifiers.CAFFE,
                                     input_size=(32, 32), ceil_mode=True)
    for name, (w, b) in weights.items():  # every layer's weights, by name, in Flax layout
        p = net.variables["params"][name]
        want = w.transpose(2, 3, 1, 0) if w.ndim == 4 else w.T
        np.testing.assert_array_equal(np.asarray(p["kernel"]), want, err_msg=name)
        np.testing.assert_array_equal(np.asarray(p["bias"]), b, err_msg=name)
    image = np.random.default_rng(0).uniform(size=(32, 32, 3)).astype(np.float32)
    last_conv = f"conv5_{3 if depth == 16 else 4}"
    names = ("conv1_1", last_conv, "relu5_" + last_conv[-1], "torch_view", "relu7", "fc8")
    acts = dict(zip(names, (np.asarray(net.activations(image, n)) for n in names), strict=True))
    w, b = weights["conv1_1"]
    for row, col in ((0, 0), (7, 21), (31, 31)):
        np.testing.assert_allclose(acts["conv1_1"][row, col], _conv_at(_caffe_input(image), w, b, row, col, 1, 1),
                                   rtol=2e-4, atol=2e-3)
    # pool5 of a 2x2 map is its maximum: the 8 channels are what fc6 sees
    np.testing.assert_allclose(acts["torch_view"], np.max(acts["relu5_" + last_conv[-1]], axis=(0, 1)), rtol=1e-6)
    w8, b8 = weights["fc8"]
    np.testing.assert_allclose(acts["fc8"], w8 @ acts["relu7"] + b8, rtol=1e-4, atol=1e-5)


def test_loader_errors(tmp_path):
    layers = sequential.vgg_layers(16, **SMALL_VGG)
    weights = _weights(np.random.default_rng(0), layers, (32, 32))
    sd = _named_state_dict(weights)
    path = str(tmp_path / "bad.pth")
    pth.save(path, {k: v for k, v in sd.items() if not k.startswith("conv3_2")})
    with pytest.raises(ValueError, match="12 conv and 3 linear layers; the net has 13 and 3"):
        sequential.load_sequential(path, layers, name="vgg16", preprocessing=classifiers.CAFFE,
                                   input_size=(32, 32), ceil_mode=True)
    sd["conv2_1.weight"] = sd["conv2_1.weight"][:, :, :1]  # a 1x3 kernel where 3x3 belongs
    pth.save(path, sd)
    with pytest.raises(ValueError, match="wrong shapes.*conv2_1"):
        sequential.load_sequential(path, layers, name="vgg16", preprocessing=classifiers.CAFFE,
                                   input_size=(32, 32), ceil_mode=True)


def test_groups_inferred_from_dense_expanded_weights():
    layers = sequential.alexnet_layers()
    shapes = {"conv1": (96, 3), "conv2": (256, 96), "conv3": (384, 256), "conv4": (384, 192), "conv5": (256, 192)}
    pairs = {name: (np.zeros((o, i, 1, 1)), None) for name, (o, i) in shapes.items()}
    inferred = sequential.infer_groups(layers, pairs)
    assert [s.groups for s in inferred if s.kind == "conv"] == [1, 1, 1, 2, 2]


def test_caffe_pooling_rounds_up():
    assert sequential._pool_output(54, 3, 2, ceil_mode=True) == 27  # AlexNet's pool1 on a 224 input
    assert sequential._pool_output(54, 3, 2, ceil_mode=False) == 26
    assert sequential._pool_output(55, 3, 2, ceil_mode=True) == 27
    x = jnp.arange(16.0).reshape(1, 4, 4, 1)
    out = sequential.max_pool(x, 3, 2, ceil_mode=True)  # windows start at 0 and 2; the second is cut
    np.testing.assert_array_equal(out[0, :, :, 0], [[10, 11], [14, 15]])
