"""A one-minute demo: denoise a 128x128 crop of skimage's astronaut photo with a small net.

    python -m experiments.restore --config=experiments/configs/quick.py --out_dir=/tmp/dip_quick

A 4-level skip net of 32 channels (114,771 parameters) fitted for 600 steps; the rest is
the paper's denoising recipe. Measured on a 2-core CPU (jax 0.10.2, seed 0): the noisy input
20.94 dB, the last output 26.54 dB, the averaged output (`psnr_ema`) 27.07 dB; 36 s wall for
the command on a quiet machine (0.035 s per step), 74 s with another job on the other core.
"""

from experiments.configs import common


def get_config():
    c = common.base_config()
    c.default_image_size = 128
    c.net = "skip"
    c.net_overrides.num_input_channels = 8
    c.net_overrides.num_channels_down = (32, 32, 32, 32)
    c.net_overrides.num_channels_up = (32, 32, 32, 32)
    c.net_overrides.num_channels_skip = (4, 4, 4, 4)
    c.net_overrides.upsample_mode = "bilinear"
    c.net_overrides.pad = "reflection"
    c.input.channels = 8
    c.fit.num_iter = 600
    c.log_every = 50
    return c
