r"""The SR prior-effect comparison (paper Fig. 5 / sr_prior_effect notebook; REFERENCE §3.2 'SR prior effect').

zebra_crop.png (256x160), x4 (LR 64x40, PIL antialiased Lanczos), loss MSE(lanczos2(out), LR)
plus a TV weight, Adam 0.01 for 2000 steps. Three variants, chosen after a colon:

- `deep` (default): the deep prior, skip 5 x 128 with 4 skip channels, bilinear, reflection,
  3-channel U(0, 0.1) code, sigma_p = 1/30;
- `tv`: the pixels themselves are optimised (`pixels` net: an identity net whose parameter is
  the image, initialised as U(0, 0.1) noise, no sigmoid) with TV weight 1e-7;
- `none`: the same pixels with no prior at all.

    python -m experiments.restore --config=experiments/configs/sr_prior_effect.py:deep \
        --image=../shared/data/sr/zebra_crop.png --out_dir=/tmp/dip_prior_deep
    python -m experiments.restore --config=experiments/configs/sr_prior_effect.py:tv \
        --image=../shared/data/sr/zebra_crop.png --out_dir=/tmp/dip_prior_tv
    python -m experiments.restore --config=experiments/configs/sr_prior_effect.py:none \
        --image=../shared/data/sr/zebra_crop.png --out_dir=/tmp/dip_prior_none

Expected: no number for the crop in the paper; the order deep > TV > none of `psnr_y_final`.
On the whole zebra x4 the published images score 25.71 (deep), 24.52 (TV), 21.69 (no prior)
(REFERENCE §5.2).
"""

from experiments.configs import common

VARIANTS = ("deep", "tv", "none")


def get_config(variant: str = "deep"):
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    c = common.base_config()
    c.task = "sr"
    c.factor = 4
    c.input.channels = 3
    c.fit.num_iter = 2000
    c.fit.ema_decay = None
    c.fit.backtrack = False
    c.log_every = 500
    if variant == "deep":
        c.net = "skip"
        c.net_overrides.num_channels_down = (128,) * 5
        c.net_overrides.num_channels_up = (128,) * 5
        c.net_overrides.num_channels_skip = (4,) * 5
        c.net_overrides.upsample_mode = "bilinear"
        c.net_overrides.pad = "reflection"
    else:
        common.pixels_prior(c, tv_weight=1e-7 if variant == "tv" else 0.0)
    return c
