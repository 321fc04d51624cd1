r"""Activation maximisation: an image a classifier assigns to a class (REFERENCE §3.2 'Activation maximisation').

MEASURED
"""

from experiments.configs import common

PRIORS = ("deep", "tv")
CLASSIFIERS = ("efficientnet_lite0", "alexnet_caffe", "vgg19_caffe", "vgg16_caffe")
# The notebook's TV baseline: 1e-6 * TV_2 of the Caffe-preprocessed image (x255), i.e. 1e-6 * 255^4 on [0, 1].
NOTEBOOK_TV_WEIGHT = 1e-6 * 255.0**4


def notebook_net(c):
    """The notebook's net: 6-level skip [16 .. 128], skip channels 0 4 4 4 4 4, down kernels 5 3 5 5 3 5,
    up 5 3 5 3 5 3, bilinear, average-pool downsampling, reflection padding; a 32-channel U(0, 0.1) code."""
    return common.skip_net(c, (16, 32, 64, 128, 128, 128), (0, 4, 4, 4, 4, 4), (5, 3, 5, 5, 3, 5),
                           (5, 3, 5, 3, 5, 3), "bilinear", "avg", "reflection")


def get_config(variant: str = "deep"):
    prior, classifier = common.split_variant(variant, PRIORS, CLASSIFIERS)
    c = common.base_config()
    c.task = "activation"
    c.features.classifier = classifier
    c.features.layer = ""  # the logits: fc for EfficientNet-Lite0, fc8 for AlexNet and VGG
    c.features.unit = "black swan"
    c.features.target = 300.0
    c.features.weight = 5.0
    c.features.output_size = (256, 256)  # the classifier sees its top-left 224 x 224 (AlexNet 227 x 227)
    c.fit.lr = 0.01
    c.fit.reg_noise_std = 0.03
    c.fit.ema_decay = None
    c.fit.backtrack = False
    c.log_every = 100
    c.fit.num_iter = 300 if classifier == "efficientnet_lite0" else 3100  # measured / the notebook's
    if prior == "deep":
        notebook_net(c)
    else:
        common.pixels_prior(c, tv_weight=NOTEBOOK_TV_WEIGHT, tv_beta=2.0, offset=0.5)
    return c
