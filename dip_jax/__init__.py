"""dip-jax: Deep Image Prior (Ulyanov, Vedaldi, Lempitsky, CVPR 2018) in JAX and Flax.

`REFERENCE §N` in the code refers to section N of `dip_jax/REFERENCE.md` (the original code and the paper).
"""

from dip_jax import backend as _backend

_backend.configure()  # before any JAX backend starts; see dip_jax/backend.py

__version__ = "0.1.0"
