"""Degradation operators: one module per task, all following `base.Operator`."""

from dip_jax.operators.base import Operator
from dip_jax.operators.denoising import Denoising

__all__ = ["Denoising", "Operator"]
