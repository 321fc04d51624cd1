"""The fields every restore config has, with the original's denoising values (REFERENCE §3.2)."""

import ml_collections
from ml_collections import config_dict


def base_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.task = "denoise"
    # A path; empty uses a crop of skimage.data.astronaut() of side `default_image_size`.
    c.image = ""
    c.default_image_size = 256
    # True: `image` is already the observation (a real noisy photo); no clean metrics then.
    c.observed = False
    c.sigma = 25.0  # noise std on the [0, 255] scale
    c.seed = 0
    # Seeds fitted together; seed 0 is the single-seed run. With several, the mean image
    # and a per-pixel uncertainty map are written too (dip_jax.ensemble).
    c.seeds = 1
    # How several seeds (and images) are run: 'auto' (per backend), 'vmap' or 'sequential'
    # (dip_jax.ensemble).
    c.method = "auto"
    # Refuse, before the first step, a fit that XLA's memory estimate says will not fit the device.
    c.check_memory = True
    # Restore in overlapping tiles of tile x tile pixels (0: the whole image at once), each a fit of
    # its own, blended back with a raised-cosine window over the overlap (dip_jax/tiles.py).
    c.tile = 0
    # 16, 32 and 64 measured alike (benchmarks/tiles.py, README "Large photos"); 32 covers SR x4's downsampler
    c.tile_overlap = 32
    # A folder: restore every image in it (grouped by shape, one compilation per group).
    c.images = ""

    # Real data: a degraded image as the user has it (nothing is simulated), and optionally
    # the clean image to score against. Either replaces `image`.
    c.observation = ""
    c.clean = ""
    # Centre crop (height, width) of every loaded image, as the notebooks' crops to multiples
    # of 32 or 64; (0, 0) keeps the whole image. For SR it is the high-resolution size.
    c.crop = (0, 0)
    # denoise: 'gaussian' (sigma above) or 'poisson' (photon counts, `poisson_peak` photons at 1).
    c.noise_model = "gaussian"
    c.poisson_peak = 30.0
    # inpaint: a mask file (white = known), or 'bernoulli' (keep each pixel with probability
    # mask_keep, from the seed), 'text' or 'box' (demo masks).
    c.mask = ""
    c.mask_keep = 0.5
    # sr: the downsampler of the loss (REFERENCE §4.1); the LR image is simulated with PIL (§4.2).
    c.factor = 4
    c.sr_kernel = "lanczos2"
    c.sr_phase = 0.5
    # jpeg: the quality at which `image` is encoded to simulate an observation.
    c.jpeg_quality = 10
    # flash: the flash photo, used as the net's input; the image/observation is the no-flash photo.
    c.flash = ""
    # deblur: a kernel file (.npy, or an image normalised to sum 1), or a Gaussian of std blur_sigma;
    # the simulated observation gets Gaussian noise of std blur_noise_sigma on the [0, 255] scale.
    c.blur_kernel = ""
    c.blur_sigma = 2.0
    c.blur_noise_sigma = 1.0
    # invert / activation: a pretrained ImageNet classifier (dip_jax.classifiers) and what of it
    # the fit matches (feature inversion: the image's activations at `layer`) or drives
    # (activation maximisation: one unit of `layer`).
    c.features = ml_collections.ConfigDict()
    c.features.classifier = "efficientnet_lite0"  # a name from dip_jax.classifiers.names()
    # A .pth file of the classifier's weights: needed for the AlexNet and VGG nets; EfficientNet-Lite0's ship
    # with dip-jax (an install dependency).
    c.features.weights = ""
    c.features.layer = ""  # a layer of the classifier; '' = its logits layer
    # activation: an ImageNet class, by name ('black swan') or index ('100'), of the logits layer; a channel
    # index ('2') of another layer.
    c.features.unit = ""
    c.features.window = 20  # activation, conv layer: half-width of the central window summed (1: one neuron)
    # activation, logits layer: the value the logit is driven to (the notebook's 300); None maximises it.
    c.features.target = config_dict.placeholder(float)
    c.features.target = 300.0
    c.features.weight = 5.0  # activation: the notebook's factor on its loss
    c.features.loss = "mse"  # invert: 'mse' (the original's mean over the activations) or 'relative'
    # The (height, width) the classifier sees, the content image resized to it; (0, 0): the classifier's
    # own (224, 224 for EfficientNet-Lite0 and VGG, 227 for AlexNet).
    c.features.input_size = (0, 0)
    # The net's output, of which the classifier sees the top-left input_size window (the notebooks fit 256 x 256
    # and crop 224 or 227); (0, 0): input_size, no crop.
    c.features.output_size = (0, 0)

    # Weight of a total-variation term added to the data term (0: none), and its exponent beta:
    # sum (dx^2 + dy^2)^beta, 0.5 the isotropic TV (dip_jax.operators.total_variation).
    c.tv_weight = 0.0
    c.tv_beta = 0.5

    c.net = "standard"  # a name from dip_jax.models.names()
    c.net_overrides = ml_collections.ConfigDict()
    c.net_overrides.bn_scale_init = "ones"  # 'uniform' is PyTorch 0.4's U(0, 1) gamma
    # Recompute each conv -> BN -> activation unit in the backward pass (skip-family nets only):
    # less memory on GPU/TPU for large images or many seeds; none saved on CPU, where XLA drops it.
    c.remat = False

    c.input = ml_collections.ConfigDict()
    c.input.kind = "noise"
    c.input.channels = 32
    c.input.scale = 0.1
    c.input.offset = 0.0  # added to a noise code (the pixels of a TV baseline start at offset + noise)

    c.fit = ml_collections.ConfigDict()
    c.fit.num_iter = 3000
    c.fit.lr = 0.01
    # sigma_p, the std of the code's per-step perturbation; None: the original's rule, 1/30, and
    # 1/20 for denoising at sigma >= 50 (experiments/restore_lib.reg_noise_std; REFERENCE §3.2).
    c.fit.reg_noise_std = None
    c.fit.ema_decay = 0.99
    c.fit.backtrack = True
    c.fit.backtrack_drop_db = 5.0
    c.fit.backtrack_check_every = 1
    c.fit.backtrack_skip_every = 100
    c.fit.final_input = "perturbed"
    c.fit.steps_per_call = 0
    # Early stopping (dip_jax/stopping.py): none | wmv | emv, window W, patience P, EMV decay;
    # with stop_at_detection the fit ends P steps after the detection instead of at num_iter.
    # 'auto': experiments.problems.REAL_DATA_STOPPING on a real observation (--observation, or
    # --images with observed=True), the fixed budget `num_iter` when the degradation is simulated.
    c.fit.early_stopping = "auto"
    c.fit.es_window = 100
    c.fit.es_patience = 1000
    c.fit.es_emv_decay = 0.9
    c.fit.stop_at_detection = False
    # float32 | tensorfloat32 | default: the precision of convolutions and matrix products
    # (dip_jax.fit.PRECISIONS). float32 keeps the original's fp32 accuracy on GPUs too.
    c.fit.precision = "float32"

    c.log_every = 100  # progress line and plot resolution
    return c


def pixels_prior(c: ml_collections.ConfigDict, tv_weight: float, tv_beta: float = 0.5,
                 offset: float = 0.0) -> ml_collections.ConfigDict:
    """`c` turned into a pixel-space baseline: the `pixels` net, whose parameter is the image itself,
    starts at offset + U(0, 0.1) (a 3-channel code) and is kept in check by tv_weight * TV_beta alone."""
    c.net = "pixels"
    c.net_overrides = ml_collections.ConfigDict()  # no skip-net options
    c.input.channels = 3
    c.input.offset = offset
    c.fit.reg_noise_std = 0.0
    c.tv_weight = tv_weight
    c.tv_beta = tv_beta
    return c


def split_variant(variant: str, priors: tuple, classifiers: tuple) -> tuple:
    """'PRIOR' or 'PRIOR,CLASSIFIER' (a config's argument after the colon) -> (prior, classifier)."""
    prior, _, classifier = variant.partition(",")
    classifier = classifier or classifiers[0]
    if prior not in priors or classifier not in classifiers:
        raise ValueError(f"unknown variant {variant!r}; expected PRIOR or PRIOR,CLASSIFIER with PRIOR one of "
                         f"{priors} and CLASSIFIER one of {classifiers}")
    return prior, classifier


def skip_net(c: ml_collections.ConfigDict, channels: tuple, skip: tuple, filter_size_down, filter_size_up,
             upsample_mode: str, downsample_mode: str, pad: str, code_channels: int = 32) -> ml_collections.ConfigDict:
    """`c` with a `skip` net of these settings (channels down and up alike) and a `code_channels` U(0, 0.1) code."""
    c.net = "skip"
    c.net_overrides.num_channels_down = tuple(channels)
    c.net_overrides.num_channels_up = tuple(channels)
    c.net_overrides.num_channels_skip = tuple(skip)
    c.net_overrides.filter_size_down = filter_size_down
    c.net_overrides.filter_size_up = filter_size_up
    c.net_overrides.upsample_mode = upsample_mode
    c.net_overrides.downsample_mode = downsample_mode
    c.net_overrides.pad = pad
    c.input.channels = code_channels
    return c
