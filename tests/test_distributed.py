"""Several processes on this machine, as on several hosts: jax.distributed with a coordinator on localhost.

Each test starts its own processes (free ports, a time limit, all killed at the end) and compares
what they wrote with one process doing the same work.
"""

import os
import sys

import numpy as np
from conftest import free_port, start_processes

SEEDS_WORKER = """
import sys
import jax
import numpy as np
process_id, count, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
if count > 1:
    jax.distributed.initialize(coordinator_address=f"localhost:{port}", num_processes=count, process_id=process_id)
import jax.numpy as jnp
from conftest import tiny_skip
from dip_jax import ensemble, fit, operators
from dip_jax.restore import InputConfig
op = operators.Denoising(25.0)
clean = jax.random.uniform(jax.random.key(9), (32, 32, 3))
y = op.simulate(clean, jax.random.key(1))
keys = jnp.stack([jax.random.key(i) for i in range(4)])
r = ensemble.fit_seeds(y, op, tiny_skip(), fit.FitConfig(num_iter=4, backtrack=True), keys,
                       input_config=InputConfig("noise", 4), clean=clean, method="vmap")
if jax.process_index() == 0:
    np.savez(out, finals=r.finals, emas=r.emas, mean=r.mean, std=r.std, **r.history)
print("devices", jax.device_count(), "local", jax.local_device_count(), "processes", jax.process_count())
"""


def seeds_run(tmp_path, name, processes, devices_per_process=1):
    env = dict(os.environ)
    if devices_per_process > 1:
        env["XLA_FLAGS"] = env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={devices_per_process}"
    out, port = str(tmp_path / f"{name}.npz"), str(free_port())
    results = start_processes([[sys.executable, "-c", SEEDS_WORKER, str(i), str(processes), port, out]
                               for i in range(processes)], env=env, timeout=400)
    for code, stdout, stderr in results:
        assert code == 0, stderr[-3000:]
        assert f"devices {processes * devices_per_process} local {devices_per_process} processes {processes}" in stdout
    return dict(np.load(out))


def test_seeds_over_two_processes_equal_one_process(tmp_path):
    """K = 4 seeds on a mesh of 2 processes x 1 device: bitwise the run of 1 process x 2 devices, whose
    devices run the same program on the same 2 seeds each; close to 1 process x 1 device (one vmap of 4)."""
    two_processes = seeds_run(tmp_path, "two_processes", processes=2)
    two_devices = seeds_run(tmp_path, "two_devices", processes=1, devices_per_process=2)
    one_device = seeds_run(tmp_path, "one_device", processes=1)
    assert two_processes["finals"].shape == (4, 32, 32, 3) and two_processes["loss"].shape == (4, 4)
    for name, value in two_devices.items():
        np.testing.assert_array_equal(two_processes[name], value, err_msg=name)
    np.testing.assert_allclose(two_processes["loss"], one_device["loss"], rtol=1e-5)
    np.testing.assert_allclose(two_processes["finals"], one_device["finals"], atol=1e-4)
    np.testing.assert_allclose(two_processes["mean"], two_processes["emas"].mean(0), rtol=1e-6)
    np.testing.assert_allclose(two_processes["std"], two_processes["emas"].std(0), rtol=1e-5, atol=1e-7)
