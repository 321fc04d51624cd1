"""A wheel built from the checkout: the apps, their configs and the reference notes are in it, and the
installed commands run from another folder (no checkout on the path)."""

import os
import subprocess
import sys
import zipfile

import pytest
from conftest import ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(site folder with the wheel installed, its bin folder, the wheel's file names)."""
    tmp = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), ROOT],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = (tmp / "dist").glob("dip_jax-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    site = tmp / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                              str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    return site, site / "bin", names


def run_installed(site, args, cwd):
    # the installed copy first on the path; the checkout is not on it (cwd is elsewhere)
    env = dict(os.environ, PYTHONPATH=str(site))
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_wheel_holds_the_apps_and_their_data(installed):
    _, _, names = installed
    for name in ("dip_jax/REFERENCE.md", "dip_jax/classifiers/imagenet_classes.tsv", "experiments/restore.py",
                 "experiments/configs/quick.py", "experiments/configs/denoise_f16.py", "benchmarks/quality.py",
                 "benchmarks/paper_numbers.py"):
        assert name in names, name
    assert not any(n.startswith("tests/") for n in names)


def test_installed_commands_run_from_another_folder(installed, tmp_path):
    site, bin_dir, _ = installed
    where = run_installed(site, [sys.executable, "-c", "import experiments, dip_jax; print(experiments.__file__)"],
                          tmp_path)
    assert where.stdout.strip().startswith(str(site)), where.stdout + where.stderr
    r = run_installed(site, [str(bin_dir / "dip-quality"), "--helpfull"], tmp_path)  # absl's help exits 1
    assert "--protocol" in r.stdout and "--masked_dir" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
    out = tmp_path / "out"
    r = run_installed(site, [str(bin_dir / "dip-restore"), "--config=quick", "--config.default_image_size=48",
                             "--num_iter=2", f"--out_dir={out}"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "comparison.png").is_file() and (out / "metrics.json").is_file()
