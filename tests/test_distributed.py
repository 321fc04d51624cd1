"""Several processes on this machine, as on several hosts: jax.distributed with a coordinator on localhost.

Each test starts its own processes (free ports, a time limit, all killed at the end) and compares
what they wrote with one process doing the same work.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
from conftest import ROOT, free_port, start_processes

from experiments import restore_lib, shards

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


def write_folder(path, count):
    """`count` small photos of two sizes (32 x 32 and 32 x 48)."""
    import imageio.v3 as iio
    from skimage import data

    path.mkdir()
    photo = data.astronaut()
    for i in range(count):
        crop = photo[20 * i:20 * i + 32, 100:132 + 16 * (i % 2)]
        iio.imwrite(path / f"p{i}.png", crop)
    return path


def restore_command(config_file, images, out, *args):
    return [sys.executable, "-m", "experiments.restore", f"--config={config_file}", f"--images={images}",
            f"--out_dir={out}", "--num_iter=3", *args]


def distributed(i, count, port):
    return ["--distributed", f"--coordinator_address=localhost:{port}", f"--num_processes={count}",
            f"--process_id={i}"]


def published(out):
    """{image folder: {file: bytes}} of every finished image (its metrics.json as parsed rows: they hold times)."""
    found = {}
    for name in sorted(os.listdir(out)):
        folder = out / name
        if folder.is_dir() and not name.startswith(".") and (folder / "metrics.json").is_file():
            found[name] = {f: (folder / f).read_bytes() for f in sorted(os.listdir(folder))
                           if f not in ("metrics.json", ".dip_jax_outputs.json")}
            row = json.loads((folder / "metrics.json").read_text())
            found[name]["scores"] = {k: v for k, v in row.items() if k.startswith(("psnr", "ssim", "loss"))}
    return found


def test_a_folder_over_two_and_four_processes_equals_one_process(tiny_config_file, tmp_path):
    """Each process restores its share on its own CPU; every image's files are bitwise those of one
    process, as an image's fit is the same program on the same data whichever process runs it."""
    images = write_folder(tmp_path / "images", 5)
    one = tmp_path / "one"
    [(code, _, err)] = start_processes([restore_command(tiny_config_file, images, one)], timeout=300)
    assert code == 0, err[-3000:]
    for count in (2, 4):
        out, port = tmp_path / f"over{count}", free_port()
        results = start_processes([restore_command(tiny_config_file, images, out, *distributed(i, count, port))
                                   for i in range(count)], timeout=400)
        for code, _, err in results:
            assert code == 0, err[-3000:]
        assert published(out) == published(one) and len(published(one)) == 5
        summary = json.loads((out / "metrics.json").read_text())
        assert summary["processes"] == count and [r["image"] for r in summary["images"]] == [
            r["image"] for r in json.loads((one / "metrics.json").read_text())["images"]]
        entries = sorted(os.listdir(out / ".dip_jax_shards"))  # every share's marker, one claim of the summary
        assert [e for e in entries if e.endswith(".json")] == [f"{i}-of-{count}.json" for i in range(count)]
        assert len([e for e in entries if e.endswith(".claim")]) == 1


def test_a_killed_process_loses_only_its_image_in_flight(tiny_config_file, tmp_path):
    """SIGKILL one of two processes during its second image: its first stays, the other process finishes
    its share, and --resume (both processes again) redoes only what is missing, equal to a run never killed."""
    images = write_folder(tmp_path / "images", 6)
    whole = tmp_path / "whole"
    [(code, _, err)] = start_processes([restore_command(tiny_config_file, images, whole, "--num_iter=100")],
                                       timeout=300)
    assert code == 0, err[-3000:]
    paths = [str(images / f"p{i}.png") for i in range(6)]
    owners = shards.partition([shards.image_size(p) for p in paths], 2)
    share_1 = set(n for n, o in zip(restore_lib.folder_names(paths), owners, strict=True) if o == 1)
    out, port = tmp_path / "out", free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, "tests")]))
    logs = [open(tmp_path / f"{i}.err", "w+") for i in range(2)]
    commands = [restore_command(tiny_config_file, images, out, "--num_iter=100", *distributed(i, 2, port))
                for i in range(2)]
    procs = [subprocess.Popen(c, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
             for c, log in zip(commands, logs, strict=True)]
    try:
        deadline = time.monotonic() + 300
        while not (out.is_dir() and published(out).keys() & share_1):  # process 1 is on its second image
            assert time.monotonic() < deadline and procs[1].poll() is None, "process 1 never finished an image"
            time.sleep(0.02)
        os.killpg(procs[1].pid, signal.SIGKILL)
        logs[0].seek(0)
        assert procs[0].wait(timeout=300) == 0, logs[0].read()[-3000:]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    survived = published(out)
    lost = share_1 - set(survived)
    assert set(survived) >= set(published(whole)) - share_1  # the other process finished its share
    assert 1 <= len(lost) < len(share_1)  # the dead process's finished image is there, the one in flight is not
    assert not (out / "metrics.json").exists()  # no summary: a share is missing
    for name, files in survived.items():
        assert files == published(whole)[name], name
    port = free_port()
    results = start_processes([restore_command(tiny_config_file, images, out, "--num_iter=100", "--resume",
                                               *distributed(i, 2, port)) for i in range(2)], timeout=400)
    for code, _, err in results:
        assert code == 0, err[-3000:]
    assert published(out) == published(whole)
    assert f"{len(share_1)} image(s), {len(share_1) - len(lost)} done before, {len(lost)} to restore" in results[1][2]
    assert not [n for n in os.listdir(out) if n.startswith(".staging")]
    assert len(json.loads((out / "metrics.json").read_text())["images"]) == 6
