r"""Zebra super-resolution x4 (paper Figs. 1 and 5; REFERENCE §3.2 'Super-resolution', §4).

HR = zebra_GT.png centre-cropped to 576x384 (multiples of 32, as the notebook); LR = PIL's
antialiased Lanczos of it (144x96). Standard net (2,217,831 parameters), z = 32 channels at the
HR size, sigma_p = 0.03, Adam 0.01 for 2000 steps, loss MSE(lanczos2 downsampling of the
output, LR), no EMA, no backtracking.

    python -m experiments.restore --config=experiments/configs/sr_zebra_x4.py \
        --image=../shared/data/sr/zebra_GT.png --out_dir=/tmp/dip_zebra_x4

(A real low-resolution photo: `--observation=lr.png --factor=4`, and `--config.crop="(0, 0)"`.)
Expected (`psnr_y_final`, the paper's Y-channel PSNR with its border shave): the published
zebra x4 image scores 25.71 dB, bicubic 24.01 dB (REFERENCE §5.2; the eval crop of the
paper's images differs slightly from ours, which shaves the 576x384 crop itself).
Measured on a 2-core CPU at reduced size (`--config.crop="(96, 96)" --num_iter=200`, seed 0, LR 24x24):
`psnr_y_final` 26.60 dB against bicubic 24.91 dB (RGB `psnr_final` 25.04, bicubic 23.76).
"""

from experiments.configs import common


def get_config():
    c = common.base_config()
    c.task = "sr"
    c.factor = 4
    c.crop = (384, 576)
    c.fit.num_iter = 2000
    c.fit.reg_noise_std = 0.03
    c.fit.ema_decay = None
    c.fit.backtrack = False
    return c
