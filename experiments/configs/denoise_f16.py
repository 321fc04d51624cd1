"""The paper's F16 denoising (Fig. 4 row; REFERENCE §3.2 'Denoising').

Standard skip net (2,217,831 parameters), z of 32 channels U(0, 0.1), sigma_p = 1/30,
Adam 0.01 for 3000 steps, EMA 0.99, backtracking, sigma = 25.

    python -m experiments.restore --config=experiments/configs/denoise_f16.py \
        --image=../shared/data/denoising/F16_GT.png --out_dir=/tmp/dip_f16

Expected: the published DIP image for F16 scores 33.69 dB (REFERENCE §5.1); a run reaches
about 32-33.5 dB PSNR for the averaged output (`psnr_ema`), the noisy input about 20.6 dB.
About 3.4 s per step at 512x512 on a 2-core CPU (benchmarks/speed.py), so about 3 hours there.
"""

from experiments.configs import common


def get_config():
    return common.base_config()
