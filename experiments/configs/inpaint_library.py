r"""Large-hole inpainting of the library, architecture comparison (paper Fig. 8; REFERENCE §3.2).

Default: the notebook's `skip_depth6` (hourglass [16, 32, 64, 128, 128, 128], k_down 5, k_up 3,
no 1x1 up-convs, nearest; 2,996,467 parameters) on a 1-channel U(0, 0.1) code, sigma_p = 0,
Adam 0.01 for 3001 steps, masked MSE. Pass `--config.net=skip_depth4` or `skip_depth2` for the
shallower nets of the figure (library_architectures.py runs the whole figure, UNet and ResNet included).

    python -m experiments.restore --config=experiments/configs/inpaint_library.py \
        --image=../shared/data/inpainting/library.png --mask=../shared/data/inpainting/library_mask.png \
        --out_dir=/tmp/dip_library

Expected: no number in the paper (qualitative: deeper nets inpaint better).
Measured on a 2-core CPU at reduced size (`--config.crop="(128, 128)" --num_iter=400`, seed 0):
masked input 18.40 dB, `psnr_final` 19.45 dB (still rising at 400), 0.057 s per step.
"""

from experiments.configs import common


def get_config():
    c = common.base_config()
    c.task = "inpaint"
    c.net = "skip_depth6"
    c.input.channels = 1
    c.fit.num_iter = 3001
    c.fit.reg_noise_std = 0.0
    c.fit.ema_decay = None
    c.fit.backtrack = False
    c.fit.final_input = "clean"
    c.log_every = 50
    return c
