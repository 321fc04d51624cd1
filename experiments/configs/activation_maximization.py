r"""Activation maximisation: an image a classifier assigns to a class (REFERENCE §3.2 'Activation maximisation').

No target image: the fit drives the logit of one ImageNet class (`--config.features.unit`, a
name or an index) towards 300, loss 5 |300 - logit|, through the top-left window of the net's
256x256 output that the classifier sees (`dip_jax.operators.ActivationMaximization`). The
variant after the colon is the prior, optionally with the classifier (`:deep,alexnet_caffe`):

- `deep` (default): the notebook's net (6-level skip [16, 32, 64, 128, 128, 128], skip channels
  0 4 4 4 4 4, bilinear, average-pool downsampling, reflection padding; 2,948,567 parameters
  at 3 output channels), a 32-channel U(0, 0.1) code, sigma_p 0.03, Adam 0.01;
- `tv`: the pixels themselves (the `pixels` net) from 0.5 + U(0, 0.1), kept in check by the
  notebook's TV baseline, 1e-6 TV_2 of the Caffe-preprocessed image = 1e-6 * 255^4 TV_2
  (tv_beta 2) on [0, 1], Adam 0.01.

EfficientNet-Lite0 (the default; its weights ship with dip-jax), 224x224 windows: 300 steps,
measured enough for rank 1 for every class below. AlexNet / VGG (`:deep,alexnet_caffe`,
`:tv,vgg19_caffe`, ... with `--config.features.weights=PATH` to the user's .pth): the
notebook's fc8 and 3100 steps (AlexNet sees 227x227).

    python -m experiments.figures --config=experiments/configs/activation_maximization.py \
        --out_dir=/tmp/dip_am_black_swan          # both priors and figure.png
    python -m experiments.restore --config=experiments/configs/activation_maximization.py:deep \
        --config.features.unit=goose --out_dir=/tmp/dip_am_goose_deep

Measured on the 2-core CPU (seed 0, shared with other jobs), 300 steps; the classifier's
probability and rank of the class for the saved image (8 bits), and its logit. At 192x192, the
smallest side the deep prior's net takes (its reflection padding needs 3 pixels at the 6th
level), 7 minutes for the deep prior (1.31 s a step) and 4 for the TV prior (0.72 s):

    python -m experiments.figures --config=experiments/configs/activation_maximization.py \
        --config.features.input_size="(192, 192)" --config.features.output_size="(192, 192)" \
        --out_dir=/tmp/dip_am_black_swan192

| class (`unit`) | deep prior | TV prior |
|---|---|---|
| black swan (100, the default) | p 1.000, rank 1, logit 27.2 | p 1.000, rank 1, logit 66.9 |

The TV prior (the pixels: any size) at 128x128 (the same command with 128 and
`--config.features.unit=CLASS --variants=tv`):

| class (`unit`) | TV prior at 128x128 |
|---|---|
| black swan (100) | p 1.000, rank 1, logit 80.1 |
| goose (99) | p 1.000, rank 1, logit 77.9 |
| bullfrog (30) | p 1.000, rank 1, logit 86.7 |
| cheeseburger (933) | p 1.000, rank 1, logit 92.9 |

The deep prior was also measured at 128x128, before the driver checked the reflection
padding (there the deepest level is 2x2, which the original's PyTorch cannot pad; jnp.pad
reflects repeatedly): the four classes at p 1.000, rank 1 too (logits 49.6, 44.5, 29.0, 46.8).
The driver refuses that size now. The config's own sizes (a 224x224 window of a 256x256 output)
were not measured on that CPU.

Both priors make EfficientNet-Lite0 certain within 300 steps; what differs is the image
(figure.png): the deep prior's is made of smooth regions, textures and edges at the scale of
objects (at 192x192 a dark, scaly column beside a pink and red patch on olive for the swan; at
128x128 brown, cream and green bands for the goose, mottled olive skin for the bullfrog; the
cheeseburger's, though, was a blue and violet landscape: certainty is not likeness), the TV
prior's a faint high-frequency texture over gray, an adversarial pattern. The paper's
'frog' is the notebook's first class whose names contain it, 30 'bullfrog'; we take whole
names (`dip_jax.classifiers.class_index`).
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
