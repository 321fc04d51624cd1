r"""Text inpainting of kate (paper Fig. 7 top; REFERENCE §3.2 'Text inpainting').

Skip net with 128 skip channels at every level and nearest upsampling (3,002,627 parameters),
z = 32 channels of U(0, 0.1), sigma_p = 0.03, Adam 0.01 for 6001 steps, masked MSE, no EMA,
no backtracking; the final image is rendered from the clean code (REFERENCE §3.1).

    python -m experiments.restore --config=experiments/configs/inpaint_kate.py \
        --image=../shared/data/inpainting/kate.png --mask=../shared/data/inpainting/kate_mask.png \
        --out_dir=/tmp/dip_kate

(A photo that is already damaged: `--observation=photo.png --mask=its_mask.png`.)
Expected: no number in the paper (qualitative, vs. Shepard networks); `psnr_final` against
kate.png is what to compare between runs.
Measured on a 2-core CPU at reduced size (`--config.crop="(96, 96)" --num_iter=200`, seed 0):
masked input 16.68 dB, `psnr_final` 30.28 dB (1.9 s per step under load).
"""

from experiments.configs import common


def get_config():
    c = common.base_config()
    c.task = "inpaint"
    c.net = "text_inpainting"
    c.fit.num_iter = 6001
    c.fit.reg_noise_std = 0.03
    c.fit.ema_decay = None
    c.fit.backtrack = False
    c.fit.final_input = "clean"
    c.log_every = 50
    return c
