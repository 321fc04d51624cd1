"""XLA flags that DIP's nets want, set by an explicit call (`dip_jax.configure_xla()`).

On CPU, XLA's default fusion of convolutions into its YNN kernels is several times slower
for DIP's nets than running each convolution individually. Measured with the standard
2.2M-parameter net at 256x256 on a 2-core AVX-512 CPU (jax 0.10.2), seconds per step after
warm-up: 4.0 with XLA's defaults, 1.35 with
`--xla_cpu_experimental_ynn_fusion_type=-individual_convolution`.

XLA reads its flags once, when the first backend starts, so `configure()` must run before
the first JAX computation: the command-line apps call it first thing in `main`, a program of
your own calls `dip_jax.configure_xla()` itself. It only adds the flag while no backend has
started, the user has not set it, and no GPU/TPU plugin is installed (whose XLA might reject a
CPU-only flag). `DIP_JAX_XLA_DEFAULTS=0` makes it leave XLA_FLAGS untouched.
"""

from __future__ import annotations

import os

CPU_FLAGS = ("--xla_cpu_experimental_ynn_fusion_type=-individual_convolution",)


def _backends_started() -> bool:
    try:
        from jax._src import xla_bridge

        return bool(getattr(xla_bridge, "_backends", {}))
    except Exception:  # a private API: if it moves, assume the worst
        return True


def _accelerator_plugin_installed() -> bool:
    """Whether a GPU or TPU plugin is installed: its XLA build may not know the CPU flags."""
    import importlib.util

    names = ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin", "jax_rocm7_plugin", "libtpu")
    return any(importlib.util.find_spec(n) is not None for n in names)


def configure() -> list[str]:
    """Add the library's XLA flags to XLA_FLAGS where allowed; returns the flags added."""
    if os.environ.get("DIP_JAX_XLA_DEFAULTS", "1") == "0":
        return []
    current = os.environ.get("XLA_FLAGS", "")
    added = [f for f in CPU_FLAGS if f.split("=")[0] not in current]
    if not added:
        return []
    if _backends_started() or _accelerator_plugin_installed():
        return []
    os.environ["XLA_FLAGS"] = " ".join([current, *added]).strip()
    return added
