r"""Barbara with 50% of the pixels missing (paper Fig. 7 bottom and Table 1; REFERENCE §3.2, §5.3).

Grayscale: the standard net with 1 output channel (2,217,573 parameters), a Bernoulli mask
keeping each pixel with probability 0.5 (drawn from --seed; the original's is unseeded),
sigma_p = 0.03, Adam **0.001** for **11000** steps, masked MSE, backtracking checked every 50
steps (restoration's rule), final image from the last perturbed code.

    python -m experiments.restore --config=experiments/configs/restore_barbara.py \
        --image=../shared/data/restoration/barbara.png --out_dir=/tmp/dip_barbara

Expected: the paper's 32.22 dB (`psnr_final`; the published image scores 32.18 dB, REFERENCE §5.3);
the masked input about 8.9 dB. The notebook reflection-pads the image to 514x514 and scores the
padded image; we restore and score the 512x512 image itself.
Measured on a 2-core CPU at reduced size (`--config.crop="(96, 96)" --num_iter=200`, seed 0):
masked input 7.57 dB, `psnr_final` 27.74 dB (0.5 s per step).
"""

from experiments.configs import common


def get_config():
    c = common.base_config()
    c.task = "inpaint"
    c.mask = "bernoulli"
    c.mask_keep = 0.5
    c.net = "standard"  # the image's single channel sets n_channels = 1
    c.fit.num_iter = 11000
    c.fit.lr = 0.001
    c.fit.reg_noise_std = 0.03
    c.fit.ema_decay = None
    c.fit.backtrack = True
    c.fit.backtrack_check_every = 50
    c.fit.backtrack_skip_every = 0
    c.log_every = 50
    return c
