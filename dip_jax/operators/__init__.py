"""Degradation operators: one module per task, all following `base.Operator`."""

from dip_jax.operators.activation_maximization import ActivationMaximization
from dip_jax.operators.base import Operator
from dip_jax.operators.deblurring import Deblurring, gaussian_kernel
from dip_jax.operators.denoising import Denoising
from dip_jax.operators.feature_inversion import FeatureInversion
from dip_jax.operators.flash import FlashNoFlash
from dip_jax.operators.inpainting import Inpainting, bernoulli_mask, box_mask, text_mask
from dip_jax.operators.jpeg import JPEGArtifacts
from dip_jax.operators.regularizers import Regularized, total_variation
from dip_jax.operators.super_resolution import SuperResolution

__all__ = [
    "ActivationMaximization",
    "Deblurring",
    "Denoising",
    "FeatureInversion",
    "FlashNoFlash",
    "Inpainting",
    "JPEGArtifacts",
    "Operator",
    "Regularized",
    "SuperResolution",
    "bernoulli_mask",
    "box_mask",
    "gaussian_kernel",
    "text_mask",
    "total_variation",
]
