r"""Region inpainting of the vase with a meshgrid input (paper Fig. 6; REFERENCE §3.2 'Region inpainting').

Hourglass 5 x 128, no skips, nearest upsampling (2,157,955 parameters), z = the 2-channel
meshgrid, sigma_p = 0.03, Adam 0.01 for 5001 steps, masked MSE, final image from the clean code.

    python -m experiments.restore --config=experiments/configs/inpaint_vase.py \
        --image=../shared/data/inpainting/vase.png --mask=../shared/data/inpainting/vase_mask.png \
        --out_dir=/tmp/dip_vase

Expected: no number in the paper (qualitative; "(d) demonstrates sensitivity to the learning rate").
Measured on a 2-core CPU at reduced size (`--config.crop="(128, 128)" --num_iter=400`, seed 0):
masked input 13.73 dB, `psnr_final` 21.28 dB, 0.199 s per step.
"""

from experiments.configs import common


def get_config():
    c = common.base_config()
    c.task = "inpaint"
    c.net = "vase"
    c.input.kind = "meshgrid"
    c.input.channels = 2
    c.fit.num_iter = 5001
    c.fit.reg_noise_std = 0.03
    c.fit.ema_decay = None
    c.fit.backtrack = False
    c.fit.final_input = "clean"
    c.log_every = 50
    return c
