"""What `benchmarks.parity` compares, as functions: the original's nets and operators against dip-jax's.

Kept apart from the absl app so that the tests can import the list of checked networks
(`NET_CASES`) without defining its flags. torch is imported inside the functions only.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import io
import os
import sys
import types
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import reference
from dip_jax import fit, models, operators
from dip_jax.io import center_crop, load_image


def nchw(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2))


def nhwc(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(x).transpose(0, 2, 3, 1))


def errors(ours, theirs) -> tuple[float, float]:
    """(relative, absolute): max|ours - theirs| / max|theirs|, and max|ours - theirs|."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    diff = float(np.max(np.abs(ours - theirs)))
    scale = float(np.max(np.abs(theirs)))
    if scale == 0:
        return (0.0 if diff == 0 else np.inf), diff
    return diff / scale, diff


# ---------------------------------------------------------------------------------------------
# The original's code, as it is in the checkout


def original_models(reference_dir: str):
    """The original's `models` package, with its texture_nets made to run (see the module doc)."""
    import torch

    package = reference.import_reference(reference_dir, "models")
    texture_nets = reference.import_reference(reference_dir, "models.texture_nets")

    class IntPaddingNN:
        """torch.nn, except that Conv2d and ReflectionPad2d accept the float paddings texture_nets passes."""

        def __getattr__(self, name):
            return getattr(torch.nn, name)

        @staticmethod
        def Conv2d(*args, padding=0, **kwargs):  # noqa: N802 (torch's name)
            return torch.nn.Conv2d(*args, padding=int(padding), **kwargs)

        @staticmethod
        def ReflectionPad2d(padding):  # noqa: N802
            return torch.nn.ReflectionPad2d(int(padding))

    texture_nets.nn = IntPaddingNN()
    return package


def original_tv_loss(reference_dir: str) -> Callable:
    # utils/common_utils imports torchvision for its plotting helpers; tv_loss needs none of it.
    sys.modules.setdefault("torchvision", types.ModuleType("torchvision"))
    return reference.import_reference(reference_dir, "utils.sr_utils").tv_loss


# ---------------------------------------------------------------------------------------------
# 1. Networks


@dataclasses.dataclass(frozen=True)
class NetCase:
    name: str
    use: str  # where the original uses this net
    original: Callable  # original `models` package -> torch module
    ours: Callable[[], object]  # () -> dip-jax Linen module


def _library_skip(depth: int) -> Callable:
    widths = [16, 32, 64, 128, 128, 128][:depth]
    return lambda m: m.skip(1, 3, num_channels_down=widths, num_channels_up=widths, num_channels_skip=[0] * depth,
                            filter_size_up=3, filter_size_down=5, filter_skip_size=1, upsample_mode="nearest",
                            need1x1_up=False, need_sigmoid=True, need_bias=True, pad="reflection",
                            act_fun="LeakyReLU")


_WIDTHS = [16, 32, 64, 128, 128]
_SIX = [16, 32, 64, 128, 128, 128]

NET_CASES = (
    NetCase("standard", "denoising F16, SR, get_net skip",
            lambda m: m.get_net(32, "skip", "reflection", "bilinear", skip_n33d=128, skip_n33u=128, skip_n11=4,
                                num_scales=5),
            lambda: models.get("standard")),
    NetCase("standard, 1 output", "restoration barbara",
            lambda m: m.get_net(32, "skip", "reflection", "bilinear", n_channels=1),
            lambda: models.get("standard", n_channels=1)),
    NetCase("snail", "JPEG artefacts (denoising notebook)",
            lambda m: m.skip(3, 3, num_channels_down=[8, 16, 32, 64, 128], num_channels_up=[8, 16, 32, 64, 128],
                             num_channels_skip=[0, 0, 0, 4, 4], upsample_mode="bilinear", need_sigmoid=True,
                             need_bias=True, pad="reflection", act_fun="LeakyReLU"),
            lambda: models.get("snail")),
    NetCase("text_inpainting", "inpainting kate (skip 128)",
            lambda m: m.skip(32, 3, num_channels_down=[128] * 5, num_channels_up=[128] * 5,
                             num_channels_skip=[128] * 5, filter_size_up=3, filter_size_down=3,
                             upsample_mode="nearest", filter_skip_size=1, need_sigmoid=True, need_bias=True,
                             pad="reflection", act_fun="LeakyReLU"),
            lambda: models.get("text_inpainting")),
    NetCase("vase (hourglass)", "inpainting vase, meshgrid code",
            lambda m: m.skip(2, 3, num_channels_down=[128] * 5, num_channels_up=[128] * 5, num_channels_skip=[0] * 5,
                             upsample_mode="nearest", filter_skip_size=1, filter_size_up=3, filter_size_down=3,
                             need_sigmoid=True, need_bias=True, pad="reflection", act_fun="LeakyReLU"),
            lambda: models.get("vase")),
    *(NetCase(f"skip_depth{d}", "inpainting library (Fig. 8)", _library_skip(d),
              functools.partial(models.get, f"skip_depth{d}")) for d in (6, 4, 2)),
    NetCase("restoration_kate", "restoration 2% (avg-pool down)",
            lambda m: m.skip(32, 3, num_channels_down=_WIDTHS, num_channels_up=_WIDTHS, num_channels_skip=[0] * 5,
                             filter_size_down=3, filter_size_up=3, filter_skip_size=1, upsample_mode="bilinear",
                             downsample_mode="avg", need_sigmoid=True, need_bias=True, pad="reflection"),
            lambda: models.get("restoration_kate")),
    NetCase("flash", "flash/no-flash (per-level upsampling)",
            lambda m: m.skip(3, 3, num_channels_down=[128] * 5, num_channels_up=[128] * 5, num_channels_skip=[4] * 5,
                             upsample_mode=["nearest", "nearest", "bilinear", "bilinear", "bilinear"],
                             need_sigmoid=True, need_bias=True, pad="reflection"),
            lambda: models.skip(num_input_channels=3, num_channels_down=[128] * 5, num_channels_up=[128] * 5,
                                num_channels_skip=[4] * 5,
                                upsample_mode=["nearest", "nearest", "bilinear", "bilinear", "bilinear"],
                                pad="reflection")),
    NetCase("feature_inversion", "feature inversion (k 7..3, avg, zero pad)",
            lambda m: m.skip(32, 3, num_channels_down=_SIX, num_channels_up=_SIX, num_channels_skip=[4] * 6,
                             filter_size_down=[7, 7, 5, 5, 3, 3], filter_size_up=[7, 7, 5, 5, 3, 3],
                             upsample_mode="nearest", downsample_mode="avg", need_sigmoid=True, pad="zero",
                             act_fun="LeakyReLU"),
            lambda: models.skip(num_input_channels=32, num_channels_down=_SIX, num_channels_up=_SIX,
                                num_channels_skip=[4] * 6, filter_size_down=[7, 7, 5, 5, 3, 3],
                                filter_size_up=[7, 7, 5, 5, 3, 3], upsample_mode="nearest", downsample_mode="avg",
                                pad="zero")),
    NetCase("activation_max", "activation maximisation (per-level k)",
            lambda m: m.skip(32, 3, num_channels_down=_SIX, num_channels_up=_SIX, num_channels_skip=[0, 4, 4, 4, 4, 4],
                             filter_size_down=[5, 3, 5, 5, 3, 5], filter_size_up=[5, 3, 5, 3, 5, 3],
                             upsample_mode="bilinear", downsample_mode="avg", need_sigmoid=True, pad="reflection",
                             act_fun="LeakyReLU"),
            lambda: models.skip(num_input_channels=32, num_channels_down=_SIX, num_channels_up=_SIX,
                                num_channels_skip=[0, 4, 4, 4, 4, 4], filter_size_down=[5, 3, 5, 5, 3, 5],
                                filter_size_up=[5, 3, 5, 3, 5, 3], upsample_mode="bilinear", downsample_mode="avg",
                                pad="reflection")),
    NetCase("lanczos2 down", "get_net skip, downsample_mode='lanczos2'",
            lambda m: m.get_net(32, "skip", "reflection", "bilinear", downsample_mode="lanczos2"),
            lambda: models.get_net(32, "skip", "reflection", "bilinear", downsample_mode="lanczos2")),
    NetCase("lanczos3, Swish, zero pad", "skip options no notebook combines",
            lambda m: m.skip(8, 3, num_channels_down=[16, 32, 64], num_channels_up=[16, 32, 64],
                             num_channels_skip=[4, 4, 4], upsample_mode="bilinear", downsample_mode="lanczos3",
                             pad="zero", act_fun="Swish"),
            lambda: models.skip(num_input_channels=8, num_channels_down=[16, 32, 64], num_channels_up=[16, 32, 64],
                                num_channels_skip=[4, 4, 4], upsample_mode="bilinear", downsample_mode="lanczos3",
                                pad="zero", act_fun="Swish")),
    NetCase("max pool, ELU, k_s 3, no 1x1", "skip options no notebook combines",
            lambda m: m.skip(8, 3, num_channels_down=[16, 32, 64], num_channels_up=[8, 16, 32],
                             num_channels_skip=[4, 0, 4], filter_skip_size=3, upsample_mode="nearest",
                             downsample_mode="max", pad="reflection", act_fun="ELU", need1x1_up=False),
            lambda: models.skip(num_input_channels=8, num_channels_down=[16, 32, 64], num_channels_up=[8, 16, 32],
                                num_channels_skip=[4, 0, 4], filter_skip_size=3, upsample_mode="nearest",
                                downsample_mode="max", pad="reflection", act_fun="ELU", need1x1_up=False)),
    NetCase("UNet (get_net)", "get_net UNet: BatchNorm, bilinear",
            lambda m: m.get_net(32, "UNet", "reflection", "bilinear"),
            lambda: models.get_net(32, "UNet", "reflection", "bilinear")),
    NetCase("UNet (defaults)", "UNet(): deconv, InstanceNorm",
            lambda m: m.UNet(), lambda: models.get("UNet")),
    NetCase("library_unet", "inpainting library UNET (deconv, more_layers 1)",
            lambda m: m.UNet(num_input_channels=1, num_output_channels=3, feature_scale=8, more_layers=1,
                             concat_x=False, upsample_mode="deconv", pad="zero", norm_layer=m.nn.InstanceNorm2d,
                             need_sigmoid=True, need_bias=True),
            lambda: models.get("library_unet")),
    NetCase("library_resnet", "inpainting library ResNet",
            lambda m: m.ResNet(1, 3, 8, 32, need_sigmoid=True, act_fun="LeakyReLU"),
            lambda: models.get("library_resnet")),
    NetCase("texture_nets", "get_net texture_nets",
            lambda m: m.get_net(32, "texture_nets", "reflection", "nearest"),
            lambda: models.get_net(32, "texture_nets", "reflection")),
)


def check_size(net, size: int) -> int:
    """The smallest side >= `size` that the net accepts and gives back unchanged."""
    side = max(size, models.min_input_size(net))
    multiple = models.size_multiple(net)
    return -(-side // multiple) * multiple


def draw_norm_affines(net, generator) -> None:
    """gamma ~ U(0, 1) (PyTorch 0.4's init) and beta ~ U(-0.1, 0.1) for every norm with affine parameters."""
    import torch

    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.InstanceNorm2d)) and module.affine:
                module.weight.uniform_(0.0, 1.0, generator=generator)
                module.bias.uniform_(-0.1, 0.1, generator=generator)


def state_dict_shapes(original_package) -> dict:
    """{case name: [[state_dict name, shape], ...]} of the original's nets, BatchNorm buffers left out."""
    shapes = {}
    for case in NET_CASES:
        with contextlib.redirect_stdout(io.StringIO()):
            net = case.original(original_package)
        shapes[case.name] = [[k, list(v.shape)] for k, v in net.state_dict().items()
                             if not k.endswith(reference.BATCHNORM_BUFFERS)]
    return shapes


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """One implementation at one precision: output (NHWC), loss, and gradients by Flax path."""

    output: np.ndarray
    loss: float
    grads: dict


def evaluate_original(net, z: np.ndarray, target: np.ndarray, layout_of) -> Evaluation:
    """The original's net on `z`: output, MSE to `target` and its gradients (mapped by `layout_of`, a Flax net)."""
    import torch

    out = net(torch.from_numpy(nchw(z)))
    loss = torch.nn.functional.mse_loss(out, torch.from_numpy(nchw(target)))
    loss.backward()
    grads = reference.to_flax(layout_of, {name: p.grad.numpy() for name, p in net.named_parameters()})
    return Evaluation(nhwc(out.detach().numpy()), loss.item(), by_path(grads))


def evaluate_ours(net, params, z: np.ndarray, target: np.ndarray) -> Evaluation:
    def loss_fn(p):
        out = net.apply({"params": p}, jnp.asarray(z))
        return jnp.mean(jnp.square(out - target)), out

    (loss, out), grads = fit.compile_once(jax.value_and_grad(loss_fn, has_aux=True), params)(params)
    if out.dtype != z.dtype:
        raise RuntimeError(f"dip-jax computed in {out.dtype}, not {z.dtype}")
    return Evaluation(np.asarray(out), loss.item(), by_path(grads))


def by_path(tree) -> dict:
    return {tuple(k.key for k in path): np.asarray(x) for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def differences(ours: Evaluation, theirs: Evaluation, cancelled: set) -> dict:
    """`errors` of the output, the loss and the gradients; the `cancelled` biases' gradients only by size."""
    compared = [path for path in theirs.grads if path not in cancelled]
    worst = max(compared, key=lambda path: errors(ours.grads[path], theirs.grads[path])[0])
    row = dict(zip(("output_rel", "output_abs"), errors(ours.output, theirs.output), strict=True))
    row["loss_rel"] = errors(ours.loss, theirs.loss)[0]
    row["grad_rel"], row["grad_abs"] = errors(np.concatenate([ours.grads[p].ravel() for p in compared]),
                                              np.concatenate([theirs.grads[p].ravel() for p in compared]))
    row["grad_worst_tensor"] = "/".join(worst)
    row["grad_tensor_rel"], row["grad_tensor_abs"] = errors(ours.grads[worst], theirs.grads[worst])
    row["grad_largest"] = max(float(np.max(np.abs(theirs.grads[p]))) for p in compared)
    row["cancelled_bias_grad"] = max((float(np.max(np.abs(e.grads[p]))) for p in cancelled for e in (ours, theirs)),
                                     default=0.0)
    return row


def compare_net(case: NetCase, original_package, size: int, float64: bool = True, seed: int = 0) -> dict:
    """`case` in both implementations from the same weights and code, in float32 and in float64.

    Four comparisons: dip-jax against the original in float32 (what users run) and in float64
    (the same function, with rounding out of the way), and, to show what float32 rounding
    alone does to each, the original's float32 result against its float64 one and dip-jax's
    float32 result against the original's float64 one. `float64=False`: the first only.
    """
    import torch

    torch.manual_seed(seed)
    theirs = case.original(original_package)
    draw_norm_affines(theirs, torch.Generator().manual_seed(seed))
    weights = {k: v.numpy() for k, v in theirs.state_dict().items()}
    ours = case.ours()
    size = check_size(ours, size)
    rng = np.random.default_rng(seed)
    z = rng.uniform(0.0, 0.1, (1, size, size, ours.num_input_channels))
    target = rng.uniform(0.0, 1.0, (1, size, size, ours.num_output_channels))

    evaluations = {}
    for dtype in (np.float32, np.float64) if float64 else (np.float32,):
        net = copy.deepcopy(theirs).to(_torch_dtype(dtype))
        evaluations["original", dtype] = evaluate_original(net, z.astype(dtype), target.astype(dtype), ours)
        params = jax.tree_util.tree_map(lambda w, d=dtype: jnp.asarray(w, d), reference.to_flax(ours, weights))
        evaluations["dip-jax", dtype] = evaluate_ours(ours, params, z.astype(dtype), target.astype(dtype))

    cancelled = reference.cancelled_biases(ours)
    n_theirs = sum(p.numel() for name, p in theirs.named_parameters() if not reference.is_ignored(name))
    pairs = {
        "float32": (("dip-jax", np.float32), ("original", np.float32)),
        "float64": (("dip-jax", np.float64), ("original", np.float64)),
        "original_float32_error": (("original", np.float32), ("original", np.float64)),
        "dip_jax_float32_error": (("dip-jax", np.float32), ("original", np.float64)),
    }
    row = {"name": case.name, "use": case.use, "size": size, "params_original": int(n_theirs),
           "params": models.num_params(ours, z.shape), "tensors": len(evaluations["dip-jax", np.float32].grads),
           "cancelled_biases": len(cancelled)}
    for label, (a, b) in pairs.items():
        if a in evaluations and b in evaluations:
            row[label] = differences(evaluations[a], evaluations[b], cancelled)
    return row


# ---------------------------------------------------------------------------------------------
# 2. Operators

# (kernel, factor, phase); box needs its width, which is the factor
DOWNSAMPLERS = (("lanczos2", 2, 0.5), ("lanczos2", 4, 0.5), ("lanczos2", 8, 0.5), ("lanczos3", 4, 0.5),
                ("gauss12", 4, 0.0), ("gauss1sq2", 2, 0.0), ("box", 4, 0.5))


def _torch_dtype(dtype):
    import torch

    return torch.float64 if dtype == np.float64 else torch.float32


def compare_downsampler(reference_dir: str, kernel: str, factor: int, phase: float, size: int, dtype=np.float32,
                        seed: int = 0) -> dict:
    """The original's `Downsampler(preserve_size=True)` against `operators.SuperResolution`, and their gradients."""
    import torch

    downsampler_cls = reference.import_reference(reference_dir, "models.downsampler").Downsampler
    with contextlib.redirect_stdout(io.StringIO()):  # its gauss kernel prints its centre
        theirs = downsampler_cls(n_planes=3, factor=factor, kernel_type=kernel, phase=phase, preserve_size=True,
                                 kernel_width=factor if kernel == "box" else None).to(_torch_dtype(dtype))
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, (1, size, size, 3)).astype(dtype)
    y = rng.uniform(0.0, 1.0, (1, size // factor, size // factor, 3)).astype(dtype)
    x_t = torch.from_numpy(nchw(x)).requires_grad_()
    out_t = theirs(x_t)
    torch.nn.functional.mse_loss(out_t, torch.from_numpy(nchw(y))).backward()

    op = operators.SuperResolution(factor, kernel, phase)
    out_j = op.forward(jnp.asarray(x[0]))
    grad_j = jax.grad(lambda v: op.data_term(v, jnp.asarray(y[0])))(jnp.asarray(x[0]))
    out_rel, out_abs = errors(np.asarray(out_j)[None], nhwc(out_t.detach().numpy()))
    grad_rel, grad_abs = errors(np.asarray(grad_j)[None], nhwc(x_t.grad.numpy()))
    return {"name": f"Downsampler {kernel} x{factor}, phase {phase}", "dtype": np.dtype(dtype).name, "size": size,
            "output_rel": out_rel, "output_abs": out_abs, "grad_rel": grad_rel, "grad_abs": grad_abs}


def compare_tv(reference_dir: str, size: int, dtype=np.float32, seed: int = 0) -> dict:
    """The original's `tv_loss` (beta 0.5) against `operators.total_variation`, and their gradients."""
    import torch

    tv_loss = original_tv_loss(reference_dir)
    x = np.random.default_rng(seed).uniform(0.0, 1.0, (1, size, size, 3)).astype(dtype)
    x_t = torch.from_numpy(nchw(x)).requires_grad_()
    value_t = tv_loss(x_t)
    value_t.backward()
    value_j, grad_j = jax.value_and_grad(operators.total_variation)(jnp.asarray(x[0]))
    value_rel, value_abs = errors(value_j, value_t.item())
    grad_rel, grad_abs = errors(np.asarray(grad_j)[None], nhwc(x_t.grad.numpy()))
    return {"name": "tv_loss (beta 0.5)", "dtype": np.dtype(dtype).name, "size": size, "output_rel": value_rel,
            "output_abs": value_abs, "grad_rel": grad_rel, "grad_abs": grad_abs}


# ---------------------------------------------------------------------------------------------
# 3. The fit

PSNRS = ("psnr_obs", "psnr_clean", "psnr_ema_clean")


def psnr64(reference_image: np.ndarray, image: np.ndarray) -> float:
    """The notebook's compare_psnr: peak 1, a float64 mean over all values."""
    mse = np.mean(np.square(np.asarray(reference_image, np.float64) - np.asarray(image, np.float64)))
    return float(-10.0 * np.log10(mse))


def original_fit(net, codes: list, noisy: np.ndarray, clean: np.ndarray, config: fit.FitConfig) -> dict:
    """The denoising notebook's closure in its `optimize` loop, given `codes[t]` as step t's perturbed input."""
    import torch

    mse = torch.nn.MSELoss()
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    noisy_t = torch.from_numpy(nchw(noisy[None]))
    noisy_chw, clean_chw = noisy.transpose(2, 0, 1), clean.transpose(2, 0, 1)
    show_every, exp_weight = config.backtrack_skip_every, config.ema_decay
    i, out_avg, psnr_noisy_last, last_net = 0, None, 0.0, None
    history = {k: [] for k in PSNRS + ("backtracked",)}
    for code in codes:
        optimizer.zero_grad()
        out = net(torch.from_numpy(nchw(code)))
        out_avg = out.detach() if out_avg is None else out_avg * exp_weight + out.detach() * (1 - exp_weight)
        total_loss = mse(out, noisy_t)
        total_loss.backward()
        out_np = out.detach().numpy()[0]
        psnr_noisy = psnr64(noisy_chw, out_np)
        history["psnr_obs"].append(psnr_noisy)
        history["psnr_clean"].append(psnr64(clean_chw, out_np))
        history["psnr_ema_clean"].append(psnr64(clean_chw, out_avg.numpy()[0]))
        backtracked = False
        if i % show_every:
            if psnr_noisy - psnr_noisy_last < -config.backtrack_drop_db:
                with torch.no_grad():
                    for new_param, net_param in zip(last_net, net.parameters(), strict=True):
                        net_param.copy_(new_param)
                backtracked = True  # the closure returns before `i += 1`; the step still runs
            else:
                last_net = [p.detach().clone() for p in net.parameters()]
                psnr_noisy_last = psnr_noisy
        if not backtracked:
            i += 1
        history["backtracked"].append(backtracked)
        optimizer.step()
    history["ema"] = nhwc(out_avg.numpy())[0]
    return history


def dip_jax_fit(net, params, codes: list, noisy: np.ndarray, clean: np.ndarray, config: fit.FitConfig) -> dict:
    """`fit.train_step` from `params`, given `codes[t]` as step t's perturbed code.

    The step runs with reg_noise_std 0 so that it takes the given code as it is; with
    sigma_p > 0 it draws exactly `fit.perturbed_code(z, config, state.key, t)`, which is
    how `codes` were made.
    """
    config = dataclasses.replace(config, reg_noise_std=0.0)
    state = fit.init_state(net, jnp.asarray(codes[0]), config, jax.random.key(0))
    state = state.replace(params=params, opt_state=fit.optimizer(config).init(params),
                          saved_params=jax.tree_util.tree_map(jnp.copy, params),
                          ema=state.ema.astype(codes[0].dtype), last_psnr=state.last_psnr.astype(codes[0].dtype))
    step = jax.jit(functools.partial(fit.train_step, problem=fit.Problem(net), config=config))
    history = {k: [] for k in PSNRS + ("backtracked",)}
    for code in codes:
        state, metrics = step(state, jnp.asarray(code), jnp.asarray(noisy), operators.Denoising(25.0),
                              jnp.asarray(clean))
        for k in history:
            history[k].append(metrics[k].item())
    history["ema"] = np.asarray(state.ema)
    return history


def compare_fit(reference_dir: str, original_package, size: int, steps: int, float64: bool = True,
                seed: int = 0) -> dict:
    """The denoising notebook's first `steps` steps in both implementations, in float32 and (if asked) float64."""
    import torch

    clean = center_crop(load_image(os.path.join(reference_dir, "data", "denoising", "F16_GT.png")), size, size)
    noisy = np.asarray(operators.Denoising(25.0).simulate(jnp.asarray(clean), jax.random.key(seed + 1)))
    config = fit.FitConfig(num_iter=steps, backtrack=True)  # the notebook's lr, sigma_p, 0.99 EMA, backtracking
    z = jnp.asarray(np.random.default_rng(seed).uniform(0.0, 0.1, (1, size, size, 32)).astype(np.float32))
    codes = [np.asarray(fit.perturbed_code(z, config, jax.random.key(seed), t)) for t in range(steps)]
    torch.manual_seed(seed)
    weights = {k: v.numpy() for k, v in original_package.get_net(32, "skip", "reflection", "bilinear")
               .state_dict().items()}
    ours = models.get("standard")

    histories = {}
    for dtype in (np.float32, np.float64) if float64 else (np.float32,):
        theirs = original_package.get_net(32, "skip", "reflection", "bilinear")
        theirs.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
        theirs = theirs.to(_torch_dtype(dtype))
        cast = [c.astype(dtype) for c in codes]
        histories["original", dtype] = original_fit(theirs, cast, noisy.astype(dtype), clean.astype(dtype), config)
        params = jax.tree_util.tree_map(lambda w, dtype=dtype: jnp.asarray(w, dtype), reference.to_flax(ours, weights))
        histories["dip-jax", dtype] = dip_jax_fit(ours, params, cast, noisy.astype(dtype), clean.astype(dtype),
                                                  config)

    pairs = {
        "dip-jax vs original, float32": (("dip-jax", np.float32), ("original", np.float32)),
        "dip-jax vs original, float64": (("dip-jax", np.float64), ("original", np.float64)),
        "original float32 vs original float64": (("original", np.float32), ("original", np.float64)),
        "dip-jax float32 vs dip-jax float64": (("dip-jax", np.float32), ("dip-jax", np.float64)),
    }
    result = {"size": size, "steps": steps, "pairs": {}, "trajectories": {}}
    for (impl, dtype), h in histories.items():
        name = f"{impl} {np.dtype(dtype).name}"
        result["trajectories"][name] = {k: h[k] for k in PSNRS}
        result["trajectories"][name]["backtracks"] = int(sum(h["backtracked"]))
    for label, (a, b) in pairs.items():
        if a not in histories or b not in histories:
            continue
        ha, hb = histories[a], histories[b]
        row = {k: float(np.max(np.abs(np.array(ha[k]) - np.array(hb[k])))) for k in PSNRS}
        row["ema_rel"], row["ema_abs"] = errors(ha["ema"], hb["ema"])
        row["backtracks"] = [int(sum(ha["backtracked"])), int(sum(hb["backtracked"]))]
        result["pairs"][label] = row
    return result
