"""The paper's evaluation protocols as `benchmarks.quality` runs them: names, factors, scores, baselines."""

PROTOCOLS = ("sr", "denoise", "inpaint")
# The factors the paper gives settings (sigma_p, steps) and numbers for.
SR_FACTORS = (4, 8)
# The SR notebook centre-crops the HR image to multiples of 32 before making the LR (REFERENCE §4.2);
# the paper's scores are taken over that crop (§4.3).
SR_CROP_MULTIPLE = 32
# [P] ran the 9-image denoising set for 1800 steps; the F16 config's 3000 is that figure's own setting
# (REFERENCE §3.2, notes under the table).
DENOISE_NUM_ITER = 1800
# The folder given instead of simulating each protocol's input: (flag, what it holds).
GIVEN_DIRS = {
    "sr": ("lr_dir", "low-resolution"),
    "denoise": ("noisy_dir", "noisy"),
    "inpaint": ("masked_dir", "masked"),
}
SCORES = {"sr": "PSNR-Y", "denoise": "PSNR (RGB)", "inpaint": "PSNR (gray)"}
BASELINES = {"sr": "bicubic", "denoise": "noisy input", "inpaint": "masked input"}
# The number of `evaluation.evaluate` that scores the baseline under the protocol.
BASELINE_METRIC = {"sr": "psnr_y_baseline", "denoise": "psnr_input", "inpaint": "psnr_input"}
# Which output is scored, from the protocol's config: only the denoising recipe averages its outputs.
RESTORED = {
    "sr": "the last output",
    "denoise": "the exponential average of the outputs (0.99)",
    "inpaint": "the last output",
}
PAPER_NET = "standard"
