r"""Natural pre-images: inverting a pretrained classifier's features (paper Fig. 9; REFERENCE §3.2 'Feature inversion').

The fit looks for an image whose features at one layer of a pretrained classifier match those
of a photo (`--image`), loss the mean squared difference of the activations (the original's
`nn.MSELoss`), through the window the classifier sees of the net's 256x256 output
(`dip_jax.operators.FeatureInversion`). The variant after the colon is the prior, optionally
with the classifier (`:deep,alexnet_caffe`):

- `deep` (default): the notebook's net (6-level skip [16 .. 128], 4 skip channels, nearest,
  zero padding), a 32-channel U(0, 0.1) code, no perturbation of it;
- `tv`: the pixels themselves from 0.5 + U(0, 0.1) under 100 TV_2 (the notebooks have no TV
  baseline for inversion; the weight is measured, in the comment of `get_config`).

EfficientNet-Lite0 (the default; its weights ship with dip-jax) inverts `blocks.10`, the 4th of
its 5 stages, at Adam 0.01 for 400 steps; AlexNet / VGG (`--config.features.weights=PATH` to the
user's .pth) the notebook's fc6 at 0.001 for 3100 steps (AlexNet sees 224x224).

    python -m experiments.figures --config=experiments/configs/feature_inversion.py \
        --image=../shared/data/feature_inversion/building.jpg --out_dir=/tmp/dip_inv_building
    python -m experiments.restore --config=experiments/configs/feature_inversion.py:deep \
        --image=../shared/data/feature_inversion/monkey.jpg --out_dir=/tmp/dip_inv_monkey_deep

Measured on the 2-core CPU (seed 0, shared with other jobs) at 128x128 (the figures command
above with `--config.features.input_size="(128, 128)" --config.features.output_size="(128, 128)"`),
400 steps; relative feature distance ||Phi(x) - Phi(x0)||^2 / ||Phi(x0)||^2 and PSNR of the
output against the photo:

| photo | deep prior | TV prior |
|---|---|---|
| building.jpg | distance 0.058, 12.37 dB (1.33 s a step) | distance 0.050, 12.59 dB (0.37 s a step) |

Both match the features about as well, and neither is close to the photo in PSNR (the
features leave colour and exact positions open); the images differ (figure.png): the deep
prior's is a recognisable building, the dome and the ring of windows drawn with sharp edges in
plausible if shifted colours over a smooth sky, the TV prior's a faint gray copy of the same
outlines under a fine coloured texture.
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
