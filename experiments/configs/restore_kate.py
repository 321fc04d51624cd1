r"""Kate with 98% of the pixels missing (supplementary Fig. 14; REFERENCE §3.2 'Restoration, 2% pixels').

Skip net [16, 32, 64, 128, 128] without skip branches, average-pool downsampling ('restoration_kate',
1,027,379 parameters), z = 32 channels of U(0, 0.1), sigma_p = 0, Adam 0.01 for 1000 steps,
a Bernoulli mask keeping 2% of the pixels (the same in all channels), backtracking every 50 steps.

    python -m experiments.restore --config=experiments/configs/restore_kate.py \
        --image=../shared/data/restoration/kate.png --out_dir=/tmp/dip_kate2

Expected: no number in the paper (qualitative).
Measured on a 2-core CPU at reduced size (`--config.crop="(128, 128)" --num_iter=400`, seed 0):
kept pixels 5.33 dB, `psnr_final` 20.95 dB (best 21.74 at step 269), 0.049 s per step.
"""

from experiments.configs import common


def get_config():
    c = common.base_config()
    c.task = "inpaint"
    c.mask = "bernoulli"
    c.mask_keep = 0.02
    c.net = "restoration_kate"
    c.fit.num_iter = 1000
    c.fit.reg_noise_std = 0.0
    c.fit.ema_decay = None
    c.fit.backtrack = True
    c.fit.backtrack_check_every = 50
    c.fit.backtrack_skip_every = 0
    c.log_every = 50
    return c
