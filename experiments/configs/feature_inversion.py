r"""Natural pre-images: inverting a pretrained classifier's features (paper Fig. 9; REFERENCE §3.2 'Feature inversion').

MEASURED
"""

from experiments.configs import common

PRIORS = ("deep", "tv")
CLASSIFIERS = ("efficientnet_lite0", "alexnet_caffe", "vgg19_caffe", "vgg16_caffe")
# The layer each classifier's run inverts unless --config.features.layer says otherwise.
LAYERS = {"efficientnet_lite0": "blocks.10", "alexnet_caffe": "fc6", "vgg19_caffe": "fc6", "vgg16_caffe": "fc6"}


def notebook_net(c):
    """The notebook's net: 6-level skip [16 .. 128], 4 skip channels, kernels 7 7 5 5 3 3, nearest,
    average-pool downsampling, zero padding; a 32-channel U(0, 0.1) code."""
    return common.skip_net(c, (16, 32, 64, 128, 128, 128), (4,) * 6, (7, 7, 5, 5, 3, 3), (7, 7, 5, 5, 3, 3),
                           "nearest", "avg", "zero")


def get_config(variant: str = "deep"):
    prior, classifier = common.split_variant(variant, PRIORS, CLASSIFIERS)
    c = common.base_config()
    c.task = "invert"
    c.features.classifier = classifier
    c.features.layer = LAYERS[classifier]
    c.features.output_size = (256, 256)  # the classifier sees its top-left 224 x 224
    if classifier == "alexnet_caffe":
        c.features.input_size = (224, 224)  # what the notebook gives AlexNet (REFERENCE §6.16)
    c.fit.ema_decay = None
    c.fit.backtrack = False
    c.fit.reg_noise_std = 0.0
    c.log_every = 100
    if classifier == "efficientnet_lite0":  # measured (the docstring)
        c.fit.lr = 0.01
        c.fit.num_iter = 400
    else:  # the notebook's
        c.fit.lr = 0.001
        c.fit.num_iter = 3100
    if prior == "deep":
        notebook_net(c)
    else:
        # Pixels from 0.5 + U(0, 0.1) under TV_2, as the activation-maximisation notebook's baseline; the
        # weight is measured (the docstring): at 128x128, blocks.10, 200 steps, 10 / 100 / 1000 gave feature
        # distances 0.034 / 0.054 / 0.097 and 13.2 / 13.2 / 13.1 dB, the larger weights smoother.
        common.pixels_prior(c, tv_weight=100.0, tv_beta=2.0, offset=0.5)
        c.fit.lr = 0.01
    return c
