"""The side-by-side figure of a config's variants: drawn from finished runs, and run end to end by the app."""

import json

import numpy as np
import pytest
from conftest import cli, feature_config

from experiments import figures_lib, restore_lib
from experiments.configs import feature_inversion

# A figure config of the tiny sizes: the feature configs' variants, shrunk (the net, the sizes, the steps).
TINY_FIGURE_CONFIG = '''
from experiments.configs import activation_maximization, common


def get_config(variant="deep"):
    c = activation_maximization.get_config(variant)
    c.features.input_size = (64, 64)
    c.features.output_size = (72, 72)
    c.fit.num_iter = 3
    c.log_every = 1
    if c.net != "pixels":
        c.net_overrides.num_channels_down = (8, 8, 8)
        c.net_overrides.num_channels_up = (8, 8, 8)
        c.net_overrides.num_channels_skip = (2, 2, 2)
        c.net_overrides.filter_size_down = (3, 3, 3)
        c.net_overrides.filter_size_up = (3, 3, 3)
        c.input.channels = 4
    return c
'''


@pytest.fixture(scope="module")
def inversion_runs(tmp_path_factory):
    """A deep-prior and a TV-prior inversion of the default photo, a few steps each."""
    root = tmp_path_factory.mktemp("inversion")
    tv = feature_inversion.get_config("tv")
    runs = {"deep": feature_config("invert", **{"features.layer": "blocks.5"}),
            "tv": feature_config("invert", **{"features.layer": "blocks.5", "net": "pixels", "input.channels": 3,
                                              "input.offset": tv.input.offset, "tv_weight": tv.tv_weight,
                                              "tv_beta": tv.tv_beta})}
    runs["tv"].net_overrides = tv.net_overrides
    for name, config in runs.items():
        restore_lib.run(config, str(root / name))
    return root


def test_figure_of_finished_runs(inversion_runs, tmp_path):
    dirs = [str(inversion_runs / "deep"), str(inversion_runs / "tv")]
    titles = []
    for d in dirs:
        title, image = figures_lib.run_panel(d)
        assert image.shape == (64, 64, 3)  # the classifier's window of the 72 x 72 output
        m = json.loads(open(f"{d}/metrics.json").read())
        assert f"feature distance {m['feature_distance_final']:.3f}" in title
        assert f"{m['psnr_original_final']:.2f} dB" in title
        titles.append(title.splitlines()[0])
    assert titles == ["deep prior", "TV prior"]
    title, original = figures_lib.original_panel(dirs[0])
    np.testing.assert_array_equal(original, figures_lib.io.load_image(f"{dirs[0]}/observation.png"))
    path = tmp_path / "figure.png"
    figures_lib.draw(str(path), dirs)
    assert path.is_file() and path.stat().st_size > 10_000


def test_variant_config_applies_the_overrides(tmp_path):
    path = tmp_path / "figure_config.py"
    path.write_text(TINY_FIGURE_CONFIG)
    config = figures_lib.variant_config(str(path), "tv", {"features.unit": "frog", "fit.num_iter": 5})
    assert (config.net, config.features.unit, config.fit.num_iter) == ("pixels", "frog", 5)
    with pytest.raises(ValueError, match="unknown variant"):
        figures_lib.variant_config(str(path), "bm3d", {})


def test_command_line_runs_both_priors_and_draws_them(tmp_path):
    config = tmp_path / "figure_config.py"
    config.write_text(TINY_FIGURE_CONFIG)
    out = tmp_path / "figure"
    r = cli(f"--config={config}", f"--out_dir={out}", "--config.features.unit=cheeseburger",
            module="experiments.figures")
    assert r.returncode == 0, r.stderr[-2000:]
    for variant in ("deep", "tv"):
        m = json.loads((out / variant / "metrics.json").read_text())
        assert m["class_name"] == "cheeseburger" and m["num_iter"] == 3
        assert 0 <= m["target_probability_final"] <= 1
    assert json.loads((out / "tv" / "metrics.json").read_text())["net"] == "pixels"
    assert (out / "figure.png").is_file()
    # finished runs: the figure only
    again = tmp_path / "again"
    r = cli(f"--runs={out / 'deep'},{out / 'tv'}", f"--out_dir={again}", module="experiments.figures")
    assert r.returncode == 0, r.stderr[-2000:]
    assert (again / "figure.png").is_file()
