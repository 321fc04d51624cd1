r"""Flash / no-flash reconstruction (paper Fig. 10; REFERENCE §3.2 'Flash / no-flash').

The flash photo is the net's input z; the no-flash photo is the target. Skip net 5 x 128 with
4 skip channels, upsampling [nearest, nearest, bilinear, bilinear, bilinear], reflection padding
(2,184,307 parameters for 3 input channels), Adam **0.1** for 601 steps, sigma_p = 0, no EMA.
Both photos are centre-cropped to 768x704, as the notebook.

    python -m experiments.restore --config=experiments/configs/flash_no_flash.py \
        --observation=../shared/data/flash_no_flash/cave01_01_noflash.jpg \
        --flash=../shared/data/flash_no_flash/cave01_00_flash.jpg --out_dir=/tmp/dip_flash

Expected: no number in the paper (qualitative). The notebook warns that a run sometimes gets
stuck at a reddish image: rerun with another --seed.
Measured on a 2-core CPU at reduced size (`--config.crop="(128, 128)" --num_iter=300`, seed 0):
`psnr_obs_final` (against the no-flash photo) 22.96 dB, 0.205 s per step.
"""

from experiments.configs import common


def get_config():
    c = common.base_config()
    c.task = "flash"
    c.crop = (704, 768)
    c.net = "skip"
    c.net_overrides.num_channels_down = (128,) * 5
    c.net_overrides.num_channels_up = (128,) * 5
    c.net_overrides.num_channels_skip = (4,) * 5
    c.net_overrides.upsample_mode = ("nearest", "nearest", "bilinear", "bilinear", "bilinear")
    c.net_overrides.pad = "reflection"
    c.input.kind = "image"
    c.input.channels = 3
    c.fit.num_iter = 601
    # the paper's fixed budget: the no-flash photo is a target, not a degraded image to stop on
    c.fit.early_stopping = "none"
    c.fit.lr = 0.1
    c.fit.reg_noise_std = 0.0
    c.fit.ema_decay = None
    c.fit.backtrack = False
    c.log_every = 50
    return c
