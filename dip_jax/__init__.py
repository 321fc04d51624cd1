"""dip-jax: Deep Image Prior (Ulyanov, Vedaldi, Lempitsky, CVPR 2018) in JAX and Flax."""

from dip_jax import backend as _backend

_backend.configure()  # before any JAX backend starts; see dip_jax/backend.py

__version__ = "0.1.0"
