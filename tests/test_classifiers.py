"""The pretrained EfficientNet-Lite0 port on real photos, its layers, and the ImageNet class names."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage import data

from dip_jax import classifiers
from dip_jax.classifiers import efficientnet, imagenet


@pytest.fixture(scope="module")
def photos():
    """scikit-image's cat (chelsea: a tabby) and espresso (coffee), cropped and resized to 224x224."""
    return {name: imagenet.center_crop_resize(getattr(data, name)() / 255.0, 224) for name in ("chelsea", "coffee")}


def test_efficientnet_lite0_names_the_photos(efficientnet, photos):
    """A weight in the wrong place (a transposed kernel, a swapped BN statistic) breaks these."""
    batch = jnp.stack([photos["chelsea"], photos["coffee"]])
    probabilities = np.asarray(classifiers.probabilities(efficientnet, batch))
    chex.assert_shape(probabilities, (2, 1000))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    top5 = np.argsort(-probabilities, axis=1)[:, :5]
    print({name: [(int(i), imagenet.class_name(i), round(float(p[i]), 3)) for i in t]
           for name, t, p in zip(("chelsea", "coffee"), top5, probabilities, strict=True)})
    # measured: chelsea 282 tiger cat 0.385, 285 Egyptian cat 0.363, 281 tabby 0.167;
    # coffee 967 espresso 0.951, 968 cup 0.015
    assert 281 in top5[0]
    assert set(top5[0][:3]) <= {281, 282, 285}  # tabby, tiger cat, Egyptian cat
    assert top5[1][0] == 967
    assert probabilities[1, 967] > 0.9


def test_efficientnet_layers_and_shapes(efficientnet, photos):
    names = efficientnet.layer_names
    assert names[0] == "stem" and names[-3:] == ("head", "pool", "fc") and len(names) == 20
    assert efficientnet.logits_layer == "fc"
    image = photos["coffee"]
    shapes = {layer: jax.eval_shape(lambda x, layer=layer: efficientnet.activations(x, layer), image).shape
              for layer in ("stem", "blocks.0", "blocks.3", "blocks.15", "head", "pool", "fc")}
    assert shapes == {"stem": (112, 112, 32), "blocks.0": (112, 112, 16), "blocks.3": (28, 28, 40),
                      "blocks.15": (7, 7, 320), "head": (7, 7, 1280), "pool": (1280,), "fc": (1000,)}
    # a batch gives one row per image; other sizes work (global average pooling)
    chex.assert_shape(jax.eval_shape(efficientnet.logits, jnp.zeros((3, 64, 96, 3))), (3, 1000))
    with pytest.raises(ValueError, match="no layer 'conv4'"):
        efficientnet.activations(image, "conv4")


def test_efficientnet_preprocessing_is_the_lite_models():
    x = jnp.array([[[0.0, 127.0 / 255.0, 1.0]]])
    np.testing.assert_allclose(efficientnet.EDGE_PREPROCESSING(x), [[[-127 / 128, 0.0, 1.0]]], atol=1e-6)


def test_block_specs_of_lite0():
    specs = efficientnet.block_specs(efficientnet.LITE0_STAGES)
    assert len(specs) == 16
    assert specs[0] == (3, 1, 1, 32, 16)
    assert specs[1] == (3, 2, 6, 16, 24) and specs[2] == (3, 1, 6, 24, 24)
    assert specs[-1] == (3, 1, 6, 192, 320)


def test_state_dict_keys_map_to_flax_names():
    rng = np.random.default_rng(0)
    sd = {
        "_conv_stem.weight": rng.normal(size=(32, 3, 3, 3)),
        "_bn0.running_var": rng.uniform(size=32),
        "_bn0.num_batches_tracked": np.array(5),
        "_blocks.12._depthwise_conv.weight": rng.normal(size=(1152, 1, 5, 5)),
        "_blocks.12._bn1.weight": rng.normal(size=1152),
        "_fc.weight": rng.normal(size=(1000, 1280)),
    }
    v = efficientnet.variables_from_state_dict(sd)
    np.testing.assert_allclose(v["params"]["conv_stem"]["kernel"][1, 2, 0, 7], sd["_conv_stem.weight"][7, 0, 1, 2],
                               rtol=1e-6)
    np.testing.assert_allclose(v["params"]["blocks_12"]["depthwise_conv"]["kernel"][4, 0, 0, 9],
                               sd["_blocks.12._depthwise_conv.weight"][9, 0, 4, 0], rtol=1e-6)
    np.testing.assert_allclose(v["params"]["blocks_12"]["bn1"]["scale"], sd["_blocks.12._bn1.weight"], rtol=1e-6)
    np.testing.assert_allclose(v["batch_stats"]["bn0"]["var"], sd["_bn0.running_var"], rtol=1e-6)
    np.testing.assert_allclose(v["params"]["fc"]["kernel"][5, 3], sd["_fc.weight"][3, 5], rtol=1e-6)


def test_registry():
    assert set(classifiers.names()) >= {"efficientnet_lite0", "alexnet_caffe", "vgg16_caffe", "vgg19_caffe"}
    with pytest.raises(ValueError, match="needs its weights"):
        classifiers.get("alexnet_caffe")
    with pytest.raises(ValueError, match="unknown classifier"):
        classifiers.get("resnet50")


def test_imagenet_class_names_and_indices():
    names = imagenet.class_names()
    assert len(names) == 1000 and len(set(imagenet.synsets())) == 1000
    assert names[281] == "tabby, tabby cat" and imagenet.class_name(967) == "espresso"
    # the paper's classes (black swan and cheeseburger are the notebook's)
    assert imagenet.class_index("black swan") == 100
    assert imagenet.class_index("Cheeseburger") == 933
    assert imagenet.class_index("goose") == 99
    assert imagenet.class_index("tree frog") == 31
    assert imagenet.class_index(281) == 281 and imagenet.class_index("967") == 967
    assert imagenet.class_index("n02123045") == 281
    with pytest.raises(ValueError, match="several ImageNet classes"):
        imagenet.class_index("crane")
    with pytest.raises(ValueError, match="contain it"):
        imagenet.class_index("swan")
    with pytest.raises(ValueError):
        imagenet.class_index(1000)


def test_center_crop_resize():
    image = np.zeros((300, 400, 3), np.float32)
    image[:, 200:] = 1.0  # right half white: the centre crop keeps the split in its middle
    out = imagenet.center_crop_resize(image, 32)
    chex.assert_shape(out, (32, 32, 3))
    assert out[:, :14].max() < 0.05 and out[:, 18:].min() > 0.95
