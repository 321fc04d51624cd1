"""dip-jax: Deep Image Prior (Ulyanov, Vedaldi, Lempitsky, CVPR 2018) in JAX and Flax.

`REFERENCE §N` in the code refers to section N of `dip_jax/REFERENCE.md` (the original code and the paper).

Importing the package changes nothing outside it. `configure_xla()` sets the XLA flags that
make DIP's nets fast on a CPU (see dip_jax/backend.py); the command-line apps call it first
thing, and a program of your own calls it before its first JAX computation.
"""

from dip_jax.backend import configure as configure_xla

__all__ = ["configure_xla"]
__version__ = "0.1.0"
