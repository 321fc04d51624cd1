r"""The classifiers against PyTorch: the EfficientNet-Lite0 port, the .pth reader and writer, AlexNet/VGG.

    pip install torch==2.13.0 efficientnet-lite-pytorch==0.1.0   # not dependencies of dip-jax
    python -m benchmarks.check_classifier

Not part of the test suite (it needs torch). It checks, in one process:

1. EfficientNet-Lite0: dip-jax's Flax port against the reference PyTorch implementation
   (`efficientnet-lite-pytorch` 0.1.0, `EfficientNet.from_pretrained('efficientnet-lite0',
   weights_path=...)` in eval mode) with the same weights, on scikit-image's chelsea, coffee
   and astronaut (centre crop 0.875, bicubic to 224x224) and one U(0, 1) image, all through
   the Lite preprocessing (255 x - 127) / 128. Reported: the largest absolute logit
   difference, that difference over the largest |logit|, and whether the top-5 agree; also
   the 1280-channel `head` features against the reference's `extract_features`.
2. The .pth reader: every tensor of the shipped EfficientNet-Lite0 weights (legacy layout,
   non-contiguous strides) against `torch.load`; tensors `torch.save` writes in both layouts
   (a transposed view, an offset slice, bfloat16, a pickled `nn.Sequential`); and `torch.load`
   (weights_only and not) reading what `pth.save` writes.
3. Caffe AlexNet and VGG-16 with random weights: a PyTorch model of each built here from
   torch.nn layers (LocalResponseNorm, grouped convs, ceil-mode max pooling), saved with
   `torch.save` as a pickled model (legacy layout, as the original's AlexNet file) and as a
   state dict (zip), loaded by `dip_jax.classifiers`; logits compared on a random image
   with the Caffe preprocessing.

Measured on this 2-core CPU (torch 2.13.0+cpu, jax 0.10.2, numpy 2.4), `python -m
benchmarks.check_classifier` (32 s), largest differences of float32 outputs:

    EfficientNet-Lite0 logits, max |dlogit| (relative to max |logit|), top-5 equal on all four:
        chelsea 9.5e-06 (1.0e-06 of 9.22; top-1 282 tiger cat), coffee 6.2e-06 (5.4e-07 of 11.4;
        967 espresso), astronaut 7.2e-06 (1.1e-06 of 6.27; 560 football helmet),
        uniform noise 1.1e-05 (1.5e-06 of 7.51)
    EfficientNet-Lite0 `head` features (after ReLU6, max 6): at most 2.3e-05 (3.9e-06)
    .pth: the 296 tensors of the Lite0 file equal torch.load's bit for bit; both layouts read
        and written both ways
    random-weight Caffe AlexNet fc8: 9.0e-05 (2.0e-06 of 45.0); VGG-16: 1.2e-05 (2.3e-06 of 5.39),
        the same from the pickled model (legacy) and the state dict (zip)
"""

import collections
import os
import sys
import tempfile

import numpy as np

import dip_jax  # noqa: F401  (the library's XLA defaults, before JAX starts)
from dip_jax.classifiers import efficientnet, imagenet, pth, sequential

CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)


def _report(name: str, ours: np.ndarray, ref: np.ndarray) -> float:
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    diff = float(np.abs(ours - ref).max())
    scale = float(np.abs(ref).max())
    extra = ""
    if ours.ndim == 1 and ours.size == 1000:
        same = list(np.argsort(-ours)[:5]) == list(np.argsort(-ref)[:5])
        top1 = int(np.argmax(ref))
        extra = f", top-5 {'equal' if same else 'DIFFER'} (top-1 {top1} {imagenet.class_name(top1)})"
    print(f"{name}: max |diff| {diff:.2e} (rel {diff / scale:.2e} of max |ref| {scale:.4g}){extra}")
    return diff / scale


def check_efficientnet() -> float:
    import torch
    from efficientnet_lite_pytorch import EfficientNet
    from skimage import data

    path = efficientnet.lite0_weights_path()
    reference = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path).eval()
    ours = efficientnet.efficientnet_lite0()
    images = {name: imagenet.center_crop_resize(getattr(data, name)() / 255.0, 224)
              for name in ("chelsea", "coffee", "astronaut")}
    images["uniform noise"] = np.random.default_rng(0).uniform(size=(224, 224, 3)).astype(np.float32)
    worst = 0.0
    for name, image in images.items():
        x = torch.from_numpy(((image * 255.0 - 127.0) / 128.0).transpose(2, 0, 1)[None].astype(np.float32))
        with torch.no_grad():
            ref_logits = reference(x).numpy()[0]
            ref_head = reference.extract_features(x).numpy()[0].transpose(1, 2, 0)
        worst = max(worst, _report(f"efficientnet_lite0 {name} logits", ours.logits(image), ref_logits))
        worst = max(worst, _report(f"efficientnet_lite0 {name} head", ours.activations(image, "head"), ref_head))
    return worst


def check_reader_and_writer(tmp: str) -> None:
    import torch

    path = efficientnet.lite0_weights_path()
    ref = torch.load(path, weights_only=True)
    ours = pth.load_state_dict(path)
    assert list(ours) == list(ref), "key order"
    assert all(np.array_equal(ours[k], ref[k].numpy()) for k in ref), "values"
    print(f"pth.load of the EfficientNet-Lite0 weights: {len(ref)} tensors equal to torch.load's")
    tensors = {"t": torch.randn(4, 6).t(), "slice": torch.randn(10)[3:7], "bf16": torch.randn(3).bfloat16(),
               "long": torch.arange(5), "flag": torch.tensor(True)}
    model = torch.nn.Sequential(collections.OrderedDict(
        conv=torch.nn.Conv2d(4, 6, 3, groups=2), bn=torch.nn.BatchNorm2d(6), fc=torch.nn.Linear(6, 2)))
    for legacy in (False, True):
        layout = "legacy" if legacy else "zip"
        f = os.path.join(tmp, f"torch-{layout}.pth")
        torch.save(tensors, f, _use_new_zipfile_serialization=not legacy)
        back = pth.load(f)
        assert all(np.array_equal(np.asarray(back[k], np.float64), tensors[k].double().numpy()) for k in tensors)
        torch.save(model, f, _use_new_zipfile_serialization=not legacy)
        flat = pth.load_state_dict(f)
        assert list(flat) == list(model.state_dict())
        assert all(np.array_equal(flat[k], v.numpy()) for k, v in model.state_dict().items())
        arrays = {k: v.float().numpy() if v.dtype == torch.bfloat16 else v.numpy() for k, v in tensors.items()}
        pth.save(f, arrays, legacy=legacy)
        for weights_only in (True, False):
            back = torch.load(f, weights_only=weights_only)
            assert all(np.array_equal(back[k].numpy(), arrays[k]) and back[k].shape == arrays[k].shape
                       for k in arrays)
        print(f"{layout}: pth reads torch.save's tensors and pickled models; torch.load reads pth.save's")


def torch_sequential(layers):
    """A torch nn.Sequential with the same named layers (conv/fc weights random)."""
    import torch

    modules, c, fc_in = collections.OrderedDict(), 3, None
    for spec in layers:
        if spec.kind == "conv":
            modules[spec.name] = torch.nn.Conv2d(c, spec.features, spec.kernel, spec.stride, spec.padding,
                                                 groups=spec.groups)
            c = spec.features
        elif spec.kind == "relu":
            modules[spec.name] = torch.nn.ReLU()
        elif spec.kind == "lrn":
            modules[spec.name] = torch.nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0)
        elif spec.kind == "maxpool":
            modules[spec.name] = torch.nn.MaxPool2d(spec.kernel, spec.stride, ceil_mode=True)
        elif spec.kind == "flatten":
            modules[spec.name] = torch.nn.Flatten()
        elif spec.kind == "fc":
            modules[spec.name] = torch.nn.LazyLinear(spec.features) if fc_in is None else torch.nn.Linear(
                fc_in, spec.features)
            fc_in = spec.features
        elif spec.kind == "dropout":
            modules[spec.name] = torch.nn.Dropout()
        elif spec.kind == "softmax":
            modules[spec.name] = torch.nn.Softmax(dim=1)
    return torch.nn.Sequential(modules)


def check_sequential(tmp: str) -> float:
    import torch

    torch.manual_seed(0)
    worst = 0.0
    cases = (("alexnet_caffe", sequential.alexnet_layers(), 227, sequential.alexnet_caffe),
             ("vgg16_caffe", sequential.vgg_layers(16), 224, lambda p: sequential.vgg_caffe(p, 16)))
    for name, layers, size, load in cases:
        model = torch_sequential(layers).eval()
        image = np.random.default_rng(1).uniform(size=(size, size, 3)).astype(np.float32)
        x = torch.from_numpy((image[..., ::-1] * 255.0 - CAFFE_MEAN_BGR).transpose(2, 0, 1)[None].copy())
        with torch.no_grad():
            model(x)  # materialises the lazy fc6
            for p in model.parameters():  # weights of order 1/sqrt(fan in), as a trained net's activations
                p.copy_(torch.randn_like(p) / np.sqrt(max(p[0].numel(), 1)))
            ref = model[: [s.name for s in layers].index("fc8") + 1](x).numpy()[0]
        for layout, saved in (("pickled model, legacy", model), ("state dict, zip", model.state_dict())):
            f = os.path.join(tmp, f"{name}.pth")
            torch.save(saved, f, _use_new_zipfile_serialization=layout.endswith("zip"))
            worst = max(worst, _report(f"{name} ({layout}) fc8", load(f).logits(image), ref))
    return worst


def main():
    with tempfile.TemporaryDirectory() as tmp:
        check_reader_and_writer(tmp)
        e = check_efficientnet()
        s = check_sequential(tmp)
    print(f"worst relative logit difference: EfficientNet-Lite0 {e:.2e}, AlexNet/VGG {s:.2e}")
    return 0 if max(e, s) < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
