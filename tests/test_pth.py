"""Reading and writing .pth files without torch: both layouts, dtypes, strides, pickled models."""

import collections
import pickle
import zipfile

import numpy as np
import pytest
from conftest import FakeTorchModule

from dip_jax.classifiers import pth


def _tensors():
    rng = np.random.default_rng(0)
    return collections.OrderedDict(
        [
            ("conv.weight", rng.normal(size=(4, 3, 3, 3)).astype(np.float32)),
            ("conv.bias", rng.normal(size=(4,)).astype(np.float32)),
            ("bn.num_batches_tracked", np.array(7, np.int64)),
            ("half", rng.normal(size=(2, 5)).astype(np.float16)),
            ("double", rng.normal(size=(3,))),
            ("flags", np.array([True, False, True])),
            ("bytes", np.arange(6, dtype=np.uint8).reshape(2, 3)),
        ]
    )


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_round_trip_keeps_names_order_dtypes_and_values(tmp_path, legacy):
    path = str(tmp_path / "weights.pth")
    tensors = _tensors()
    pth.save(path, tensors, legacy=legacy)
    back = pth.load_state_dict(path)
    assert list(back) == list(tensors)
    for name, want in tensors.items():
        assert back[name].dtype == want.dtype, name
        assert back[name].shape == want.shape, name
        np.testing.assert_array_equal(back[name], want)


def test_legacy_file_starts_with_torchs_magic_number(tmp_path):
    path = str(tmp_path / "legacy.pth")
    pth.save(path, {"w": np.ones(3, np.float32)}, legacy=True)
    with open(path, "rb") as f:
        assert pickle.load(f) == pth.LEGACY_MAGIC
        assert pickle.load(f) == pth.LEGACY_PROTOCOL


def test_strided_and_offset_tensors_are_read_as_their_views():
    # The EfficientNet-Lite0 weights are stored with TensorFlow's layout and non-contiguous
    # strides, e.g. `_conv_stem.weight` of size (32, 3, 3, 3) and stride (1, 32, 288, 96).
    storage = pth._Storage(np.dtype(np.float32), 24)
    storage.data = np.arange(24, dtype=np.float32)
    transposed = pth._LazyTensor(storage, 0, (4, 6), (1, 4)).to_numpy()
    np.testing.assert_array_equal(transposed, np.arange(24, dtype=np.float32).reshape(6, 4).T)
    window = pth._LazyTensor(storage, 5, (2, 3), (6, 2)).to_numpy()
    np.testing.assert_array_equal(window, [[5, 7, 9], [11, 13, 15]])
    with pytest.raises(pth.PthError, match="reaches past its storage"):
        pth._LazyTensor(storage, 20, (2, 3), (6, 2)).to_numpy()


def test_pickled_model_flattens_to_state_dict_names(tmp_path):
    w1, b1, w2 = np.ones((2, 3, 1, 1), np.float32), np.zeros(2, np.float32), np.full((5, 2), 2.0, np.float32)
    model = FakeTorchModule(
        "torch.nn.modules.container.Sequential",
        modules=[
            ("conv1", FakeTorchModule("torch.nn.modules.conv.Conv2d", [("weight", w1), ("bias", b1)], groups=1)),
            ("relu1", FakeTorchModule("torch.nn.modules.activation.ReLU")),
            ("head", FakeTorchModule("some_user_module.Head", modules=[
                ("fc", FakeTorchModule("torch.nn.modules.linear.Linear", [("weight", w2), ("bias", None)])),
            ])),
        ],
    )
    path = str(tmp_path / "model.pth")
    pth.save(path, model, legacy=True)
    loaded = pth.load(path)
    assert isinstance(loaded, pth.PickledObject)
    assert loaded.class_name == "torch.nn.modules.container.Sequential"
    assert loaded.attributes()["_modules"]["conv1"].attributes()["groups"] == 1
    flat = pth.state_dict(loaded)
    assert list(flat) == ["conv1.weight", "conv1.bias", "head.fc.weight"]  # a None bias is skipped
    np.testing.assert_array_equal(flat["head.fc.weight"], w2)


def test_unpickler_builds_no_object_the_file_names(tmp_path):
    """A pickle that calls os.system when unpickled normally: here it only makes an inert stub."""

    class Exploit:
        def __reduce__(self):
            return pth._Global("os", "system"), ("echo should-not-run",)

    path = str(tmp_path / "evil.pth")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pth._pickle({"x": Exploit()})[0])
    loaded = pth.load(path)
    assert isinstance(loaded["x"], pth.PickledObject)
    assert loaded["x"].class_name == "os.system"
    with pytest.raises(pth.PthError, match="state dict or a pickled model"):
        pth.load_state_dict(path)


def test_checkpoint_dict_with_a_state_dict_entry(tmp_path):
    path = str(tmp_path / "ckpt.pth")
    w = np.arange(4, dtype=np.float32)
    pth.save(path, {"epoch": 3, "state_dict": collections.OrderedDict(w=w)})
    np.testing.assert_array_equal(pth.load_state_dict(path)["w"], w)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "image.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.raises(pth.PthError):
        pth.load(str(path))
    with pytest.raises(FileNotFoundError):
        pth.load(str(tmp_path / "missing.pth"))
