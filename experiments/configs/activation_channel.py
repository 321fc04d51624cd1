r"""Activation maximisation of a channel: an image that excites one conv channel (REFERENCE §3.2).

MEASURED
"""

from experiments.configs import activation_maximization

# The driven channel per classifier: the notebook's AlexNet conv4 channel 2, and the layer of
# EfficientNet-Lite0 at the same place (the 4th of 5 stages, a 14x14 map at 224).
LAYERS = {"efficientnet_lite0": "blocks.10", "alexnet_caffe": "conv4", "vgg19_caffe": "conv4_1",
          "vgg16_caffe": "conv4_1"}


def get_config(variant: str = "deep"):
    c = activation_maximization.get_config(variant)
    c.features.layer = LAYERS[c.features.classifier]
    c.features.unit = "2"
    c.features.window = 20  # the notebook's: the whole of AlexNet's 13x13 map
    if c.features.classifier != "efficientnet_lite0" and c.net != "pixels":
        c.fit.lr = 0.001  # the notebook's for a conv layer
    return c
