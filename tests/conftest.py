"""Shared fixtures: tiny nets and images so the whole suite runs in minutes on 2 cores."""

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import dip_jax  # noqa: E402,F401  (sets the library's XLA defaults before JAX starts)
from dip_jax import models  # noqa: E402


def tiny_skip(**overrides):
    """A 3-level skip net with a handful of channels: compiles and runs in seconds."""
    kw = dict(
        num_input_channels=4,
        num_output_channels=3,
        num_channels_down=(8, 8, 8),
        num_channels_up=(8, 8, 8),
        num_channels_skip=(2, 2, 2),
        upsample_mode="bilinear",
        pad="reflection",
    )
    kw.update(overrides)
    return models.skip(**kw)


@pytest.fixture
def tiny_net():
    return tiny_skip()


@pytest.fixture(scope="session")
def photo64():
    """A 64x64 crop of a real photo shipped by scikit-image (the astronaut's face)."""
    from skimage import data

    return (data.astronaut()[120:184, 170:234] / 255.0).astype(np.float32)


@pytest.fixture
def key():
    return jax.random.key(0)


@pytest.fixture(scope="session", autouse=True)
def compilation_cache(tmp_path_factory):
    """Share compiled programs between tests that build the same computation.

    Many tests fit the same tiny net; XLA compilation, not running, is most of their cost.
    """
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("jax_cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    yield
