r"""The paper's architecture comparison: inpainting the library image (Fig. 8; REFERENCE §3.2).

One run per architecture; the config argument after the colon picks it (and its learning rate):

    for net in skip_depth6 skip_depth4 skip_depth2 library_unet library_resnet; do
      python -m experiments.restore --config=experiments/configs/library_architectures.py:$net \
          --out_dir=/tmp/dip_library_$net
    done

`--net=NAME` also swaps the net but keeps the learning rate of the config's default net
(0.01); pass `--lr=0.001` with it for a UNet or ResNet.

The setting (REFERENCE §3.2 "Architecture comparison", §1.8): `library.png` (704x448) with
`library_mask.png` (18.6% of the pixels missing), a 1-channel U(0, 0.1) code, no
perturbation (sigma_p 0), masked MSE, Adam for 3001 steps, the final image from the clean
code; learning rate 0.01 for the skip-free hourglass nets and 0.001 for UNet and ResNet.
The nets: hourglass of depth 6 / 4 / 2 ([16, 32, 64, 128, 128, 128][:d], 5x5 down and 3x3 up
convs, no 1x1 up blocks, nearest upsampling; 2,996,467 / 1,060,339 / 59,635 parameters),
the library UNet (feature_scale 8, one extra level, deconv, InstanceNorm; 1,616,315) and
ResNet (8 blocks of 32 channels; 158,979).

What the paper shows (no numbers, Fig. 8): the deeper the hourglass, the better the large
hole is filled ("deeper random networks" inpaint better); the UNet, whose skip connections
pass the image straight through at every level, fills the hole poorly ("adding skip
connections ... in U-Net is highly detrimental"), and the ResNet does worse still.
"""

import ml_collections

from experiments.configs import common

DATA = "../shared/data/inpainting"
# The learning rate of each net of the figure (REFERENCE §3.2): 0.01 for the skip family.
LEARNING_RATES = {
    "skip_depth6": 0.01,
    "skip_depth4": 0.01,
    "skip_depth2": 0.01,
    "library_unet": 0.001,
    "library_resnet": 0.001,
}


def get_config(net: str = "skip_depth6"):
    if net not in LEARNING_RATES:
        raise ValueError(f"unknown net {net!r} for the library figure; expected one of {sorted(LEARNING_RATES)}")
    c = common.base_config()
    c.task = "inpaint"
    c.image = f"{DATA}/library.png"
    c.mask = f"{DATA}/library_mask.png"  # PNG / 255: 1 = known pixel, 0 = hole
    c.net = net  # a registry name: the figure's nets exactly
    c.net_overrides = ml_collections.ConfigDict()
    c.net_overrides.bn_scale_init = "ones"
    c.input.kind = "noise"
    c.input.channels = 1
    c.input.scale = 0.1
    c.fit.num_iter = 3001
    c.fit.lr = LEARNING_RATES[net]
    c.fit.reg_noise_std = 0.0
    c.fit.ema_decay = None  # no averaging in the inpainting notebook
    c.fit.backtrack = False
    c.fit.final_input = "clean"  # the inpainting notebook renders from the clean code (§3.1)
    c.log_every = 50
    return c
