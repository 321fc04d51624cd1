r"""Zebra super-resolution x8 (REFERENCE §3.2 'Super-resolution', §4, §5.2).

As sr_zebra_x4.py with factor 8 (LR 72x48), sigma_p = 0.05 and 4000 steps.

    python -m experiments.restore --config=experiments/configs/sr_zebra_x8.py \
        --image=../shared/data/sr/zebra_GT.png --out_dir=/tmp/dip_zebra_x8

Expected (`psnr_y_final`): the published zebra x8 image (sigma_p 0.05) scores 20.62 dB, bicubic
19.59 dB (REFERENCE §5.2; the paper's x8 GT is the LapSRN 584x384 crop, ours the x4 GT cropped
to 576x384, so expect a few tenths of a dB of difference).
Measured on a 2-core CPU at reduced size (`--config.crop="(128, 128)" --num_iter=400`, seed 0):
`psnr_y_final` 19.94 dB against bicubic 18.30 dB, 0.38 s per step.
"""

from experiments.configs import sr_zebra_x4


def get_config():
    c = sr_zebra_x4.get_config()
    c.factor = 8
    c.fit.num_iter = 4000
    c.fit.reg_noise_std = 0.05
    return c
