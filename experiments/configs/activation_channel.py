r"""Activation maximisation of a channel: an image that excites one conv channel (REFERENCE §3.2).

The notebook's other loss: -5 x the sum of one channel of a conv layer over a central window
of half-width 20 (the whole of AlexNet's 13x13 conv4, and of EfficientNet-Lite0's 14x14
`blocks.10` at 224x224), maximised through the window the classifier sees of the net's
256x256 output. Everything else is `activation_maximization.py`'s, the variants too (`deep`,
`tv`, optionally `,CLASSIFIER`); the driven channel is 2 of `blocks.10` (EfficientNet-Lite0,
the 4th of its 5 stages, where AlexNet's conv4 is) or the notebook's conv4 channel 2 of
AlexNet (conv4_1 of VGG), at the notebook's learning rate for a conv layer, 0.001 (3100
steps; the TV baseline 0.01). EfficientNet-Lite0's runs take 300 steps at 0.01.

    python -m experiments.figures --config=experiments/configs/activation_channel.py --out_dir=/tmp/dip_am_channel
    python -m experiments.restore --config=experiments/configs/activation_channel.py:deep \
        --config.features.unit=7 --out_dir=/tmp/dip_am_channel7      # another channel

Measured on the 2-core CPU (seed 0) at 128x128 (`--config.features.input_size="(128, 128)"
--config.features.output_size="(128, 128)"`; the deep prior's net takes 192x192 and more, the
128x128 deep run predates that check, as in `activation_maximization.py`), 300 steps: the
channel's sum over the 8x8 map (`unit_value_final`) 1984 with the deep prior, 3802 with the TV
prior; both images the classifier then calls 794 'shower curtain' (p 0.68 and 0.61). The deep
prior's image is a few soft magenta blobs with dark rims on cyan (figure.png), the TV prior's
a dense texture of small arcs in every colour: the TV prior excites the channel twice as much
with a pattern no photo has.
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
