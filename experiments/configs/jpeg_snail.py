r"""Blind JPEG artifact removal on the snail (paper Fig. 3; REFERENCE §3.2 'Blind JPEG').

The JPEG is the observation (no clean image exists); the 'snail' skip net (572,827 parameters,
3 input channels of U(0, 0.1) noise), sigma_p = 1/30, Adam 0.01 for 2400 steps, EMA 0.99 and
backtracking, as the denoising branch of the notebook. The notebook centre-crops to 384x256.

    python -m experiments.restore --config=experiments/configs/jpeg_snail.py \
        --observation=../shared/data/denoising/snail.jpg --out_dir=/tmp/dip_snail

Expected: no number in the paper (qualitative, §5.4: good at 2400 steps, the blocks are fitted
by 50K). metrics.json holds only `psnr_obs_final` (the output against the JPEG itself).
Measured on a 2-core CPU at reduced size (`--config.crop="(128, 192)" --num_iter=600`, seed 0):
`psnr_obs_final` 27.13 dB, 0.028 s per step.
"""

from experiments.configs import common


def get_config():
    c = common.base_config()
    c.task = "jpeg"
    c.crop = (256, 384)
    c.net = "snail"
    c.input.channels = 3
    c.fit.num_iter = 2400
    # the figure is the paper's fixed budget on a real JPEG (`--early_stopping=auto` stops by itself)
    c.fit.early_stopping = "none"
    return c
