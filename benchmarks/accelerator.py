r"""Everything measured on an accelerator, in one command that writes it all in one go.

    python -m benchmarks.accelerator --out_dir=/tmp/accel --image=../shared/data/denoising/F16_GT.png

Sections, run in this order while `--deadline_s` allows (a row that would start later is
recorded as skipped; each row is also printed as a JSON line as soon as it is measured):
- `precision`: the paper's denoising recipe (sigma 25, standard net, backtracking) on a
  centre crop of `--image` for `--precision_iters` steps, with `precision='float32'` (the
  default) and `'tensorfloat32'`: wall time, time per step and the PSNRs, same seed.
- `determinism`: time per step and bitwise repeatability of a fit at the crop, without and
  with `--xla_gpu_deterministic_ops=true` (a child process: XLA reads its flags at start).
- `speed`: seconds per step of the standard net at each size in `--sizes` for K seeds in
  `--seeds`, 'sequential' (one single-seed step after another) and 'vmap' (one vmapped step
  of all K), each compiled call taking `--speed_steps_per_call` steps (a `lax.scan`).
- `loop`: seconds per step at `--loop_size` with 1, 10 and 50 steps per compiled call.
- `memory`: XLA's buffer sizes of one step (`benchmarks.memory`) for `--memory_sizes` x
  `--memory_seeds`, without and with `remat`.

Writes `accelerator.json` (every row) and `accelerator.md` (the tables) into `--out_dir`
after each section. On a CPU it runs too (tests run it with tiny sizes); the determinism
flag exists only on GPUs, so there that section times the plain run only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

import dip_jax
from benchmarks.measure import advancing, seconds_per_call, seeds_stepper, step_memory
from dip_jax import fit, io, metrics, models, operators
from dip_jax.restore import InputConfig, restore

SECTIONS = ("precision", "determinism", "speed", "loop", "memory")
DETERMINISTIC_FLAG = "--xla_gpu_deterministic_ops=true"

_OUT_DIR = flags.DEFINE_string("out_dir", None, "Folder for accelerator.json and accelerator.md.")
_SECTIONS = flags.DEFINE_list("sections", list(SECTIONS), f"Sections to run, from {SECTIONS}.")
_NET = flags.DEFINE_string("net", "standard", "The network timed (a name from dip_jax.models.names()).")
_SIZES = flags.DEFINE_list("sizes", ["64", "128", "256", "512"], "speed: square image sides.")
_SEEDS = flags.DEFINE_list("seeds", ["1", "2", "4", "8"], "speed: numbers of seeds K.")
_METHODS = flags.DEFINE_list("methods", ["sequential", "vmap"], "speed: how K seeds are run.")
_STEPS = flags.DEFINE_integer("steps", 20, "speed, loop: steps per timed repeat.")
_SPEED_STEPS_PER_CALL = flags.DEFINE_integer(
    "speed_steps_per_call", 0, "speed: steps per compiled call (0: as the fit loops on this backend).")
_REPEATS = flags.DEFINE_integer("repeats", 3, "speed, loop: timed repeats (the median is reported).")
_IMAGE = flags.DEFINE_string("image", "", "precision, determinism: the clean image (none: skimage's astronaut).")
_CROP = flags.DEFINE_integer("crop", 256, "precision, determinism: centre crop side.")
_PRECISION_ITERS = flags.DEFINE_integer("precision_iters", 3000, "precision: steps of each fit.")
_DETERMINISM_ITERS = flags.DEFINE_integer("determinism_iters", 200, "determinism: steps of each fit.")
_DETERMINISM_FLAGS = flags.DEFINE_multi_string(
    "determinism_flags", [DETERMINISTIC_FLAG], "determinism: XLA_FLAGS additions, each tried in a child process.")
_MEMORY_SIZES = flags.DEFINE_list("memory_sizes", ["256", "512", "1024"], "memory: square image sides.")
_MEMORY_SEEDS = flags.DEFINE_list("memory_seeds", ["1", "8"], "memory: numbers of seeds K.")
_LOOP_CALLS = flags.DEFINE_list("loop_steps_per_call", ["1", "10", "50"], "loop: steps per compiled call.")
_LOOP_SIZE = flags.DEFINE_integer("loop_size", 256, "loop: square image side.")
_DEADLINE = flags.DEFINE_float("deadline_s", 420.0, "Start no new row after this many seconds.")
_CHILD = flags.DEFINE_bool("repeatability_child", False, "Internal: print one repeatability row as JSON.")


@dataclasses.dataclass(frozen=True)
class Plan:
    """What to measure (the flags above, as values)."""

    net: Any  # a Linen module; the apps build `models.get(--net)`
    net_name: str = "standard"
    sizes: tuple = (64, 128, 256, 512)
    seeds: tuple = (1, 2, 4, 8)
    methods: tuple = ("sequential", "vmap")
    steps: int = 20
    speed_steps_per_call: int = 0  # 0: fit.steps_per_call on this backend
    repeats: int = 3
    image: str = ""
    crop: int = 256
    precision_iters: int = 3000
    determinism_iters: int = 200
    determinism_flags: tuple = (DETERMINISTIC_FLAG,)
    memory_sizes: tuple = (256, 512, 1024)
    memory_seeds: tuple = (1, 8)
    loop_steps_per_call: tuple = (1, 10, 50)
    loop_size: int = 256


def plan_from_flags() -> Plan:
    ints = lambda values: tuple(int(v) for v in values)  # noqa: E731
    return Plan(
        net=models.get(_NET.value), net_name=_NET.value, sizes=ints(_SIZES.value), seeds=ints(_SEEDS.value),
        methods=tuple(_METHODS.value), steps=_STEPS.value,
        speed_steps_per_call=_SPEED_STEPS_PER_CALL.value, repeats=_REPEATS.value, image=_IMAGE.value,
        crop=_CROP.value, precision_iters=_PRECISION_ITERS.value, determinism_iters=_DETERMINISM_ITERS.value,
        determinism_flags=tuple(_DETERMINISM_FLAGS.value),
        memory_sizes=ints(_MEMORY_SIZES.value), memory_seeds=ints(_MEMORY_SEEDS.value),
        loop_steps_per_call=ints(_LOOP_CALLS.value), loop_size=_LOOP_SIZE.value,
    )


MB = 2**20


class Clock:
    """Seconds since the start, and whether a new piece of work may still start."""

    def __init__(self, deadline_s: float):
        self.start, self.deadline_s = time.perf_counter(), deadline_s

    def allows(self) -> bool:
        return time.perf_counter() - self.start < self.deadline_s


def timed_steps(net, size: int, k: int, method: str, steps_per_call: int, steps: int, repeats: int) -> dict:
    """Seconds per step (all K seeds) of the fit's step at this size, `steps_per_call` steps per call."""
    call = advancing(*seeds_stepper(net, k, method, size, steps_per_call))
    t0 = time.perf_counter()
    jax.block_until_ready(call())
    first = time.perf_counter() - t0
    calls = max(1, steps // steps_per_call)
    runs = [seconds_per_call(call, calls) / steps_per_call for _ in range(repeats)]
    med = statistics.median(runs)
    return {"size": size, "seeds": k, "method": method, "steps_per_call": steps_per_call,
            "first_call_seconds": first, "seconds_per_step": med, "seconds_per_step_min": min(runs),
            "seconds_per_step_max": max(runs), "seconds_per_seed_step": med / k}


def rows_until(clock: Clock, cases, measure) -> list[dict]:
    """`measure(**case)` for each case (a dict) while the clock allows; later cases are marked skipped."""
    rows = []
    for case in cases:
        rows.append({**case, **measure(**case)} if clock.allows() else {**case, "skipped": "deadline"})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def speed_rows(plan: Plan, clock: Clock) -> list[dict]:
    per_call = plan.speed_steps_per_call or fit.steps_per_call(fit.FitConfig())  # the fit's loop on this backend
    cases = [dict(size=size, k=k, method=method) for size in plan.sizes for k in plan.seeds
             for method in plan.methods if not (method == "vmap" and k == 1)]  # vmap of one: sequential
    return rows_until(clock, cases, lambda size, k, method: timed_steps(
        plan.net, size, k, method, per_call, plan.steps, plan.repeats))


def loop_rows(plan: Plan, clock: Clock) -> list[dict]:
    cases = [dict(steps_per_call=n) for n in plan.loop_steps_per_call]
    return rows_until(clock, cases, lambda steps_per_call: timed_steps(
        plan.net, plan.loop_size, 1, "sequential", steps_per_call, max(plan.steps, steps_per_call), plan.repeats))


def denoising_problem(image_path: str, crop: int, key: jax.Array):
    """(clean crop, its noisy observation at sigma 25, the operator)."""
    image = io.load_image(image_path) if image_path else io.default_image(crop)
    clean = jnp.asarray(io.center_crop(image, crop, crop))
    operator = operators.Denoising(25.0)
    return clean, operator.simulate(clean, key), operator


def denoising_fit(plan: Plan, config: fit.FitConfig) -> tuple[fit.FitResult, dict]:
    """The paper's denoising recipe with the plan's net on its crop: the result and its timings.

    `seconds` is the whole fit (initialisation, compilation, the final render);
    `seconds_per_step` runs from the end of the first compiled call to the last step.
    """
    obs_key, fit_key = jax.random.split(jax.random.key(0))
    clean, observation, operator = denoising_problem(plan.image, plan.crop, obs_key)
    marks = {}

    def timer(step, m):
        if not marks or step == config.num_iter:
            jax.block_until_ready(m)
            marks.setdefault("first", (step, time.perf_counter()))
            marks["last"] = (step, time.perf_counter())

    start = time.perf_counter()
    result = restore(observation, operator, plan.net, config, fit_key, clean=clean, callback=timer,
                     input_config=InputConfig("noise", plan.net.num_input_channels))
    jax.block_until_ready(result.final)
    (s0, t0), (s1, t1) = marks["first"], marks["last"]
    return result, {"seconds": time.perf_counter() - start,
                    "seconds_per_step": (t1 - t0) / (s1 - s0) if s1 > s0 else float("nan"),
                    "psnr_input": float(metrics.psnr(observation, clean)),
                    "psnr_final": float(metrics.psnr(result.final, clean)),
                    "psnr_ema": float(metrics.psnr(result.ema, clean))}


def precision_rows(plan: Plan, clock: Clock) -> list[dict]:
    def measure(precision):
        config = fit.FitConfig(num_iter=plan.precision_iters, backtrack=True, precision=precision)
        result, row = denoising_fit(plan, config)
        curve = np.asarray(result.history["psnr_ema_clean"])
        return {"crop": plan.crop, "num_iter": config.num_iter, **row, "psnr_ema_best": float(curve.max()),
                "psnr_ema_best_iteration": int(curve.argmax()) + 1,
                "backtracks": int(np.sum(result.history["backtracked"]))}

    return rows_until(clock, [dict(precision=p) for p in ("float32", "tensorfloat32")], measure)


def repeatability_row(plan: Plan) -> dict:
    """Two identical fits in this process: time per step and whether they agree bit for bit."""
    config = fit.FitConfig(num_iter=plan.determinism_iters, backtrack=True)
    (a, row), (b, _) = (denoising_fit(plan, config) for _ in range(2))
    finals = np.asarray(a.final), np.asarray(b.final)
    return {"num_iter": config.num_iter, "seconds_per_step": row["seconds_per_step"],
            "bitwise_equal": bool(np.array_equal(*finals)),
            "max_abs_difference": float(np.max(np.abs(finals[0] - finals[1])))}


def child_repeatability_row(plan: Plan, xla_flags: str) -> dict:
    """`repeatability_row` in a child process with `xla_flags` added to XLA_FLAGS (read at XLA's start)."""
    env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} {xla_flags}".strip())
    args = [sys.executable, "-m", "benchmarks.accelerator", "--repeatability_child", f"--net={plan.net_name}",
            f"--image={plan.image}", f"--crop={plan.crop}", f"--determinism_iters={plan.determinism_iters}"]
    child = subprocess.run(args, env=env, capture_output=True, text=True)
    if child.returncode:
        return {"error": (child.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(child.stdout.strip().splitlines()[-1])


def determinism_rows(plan: Plan, clock: Clock) -> list[dict]:
    def measure(xla_flags):
        if not xla_flags:
            return repeatability_row(plan)
        if jax.default_backend() != "gpu":
            return {"skipped": "XLA's determinism flags are GPU flags"}
        return child_repeatability_row(plan, xla_flags)

    return rows_until(clock, [dict(xla_flags=f) for f in ("", *plan.determinism_flags)], measure)


def memory_rows(plan: Plan, clock: Clock) -> list[dict]:
    cases = [dict(remat=remat, size=size, k=k) for remat in (False, True) for size in plan.memory_sizes
             for k in plan.memory_seeds]
    return rows_until(clock, cases, lambda remat, size, k: step_memory(plan.net.clone(remat=remat), k, size))


def markdown(report: dict) -> str:
    """The report's tables."""
    env = report["environment"]
    out = [f"# dip-jax on {env['device_kind']} ({env['backend']}, jax {env['jax']}), net {env['net']}", ""]

    def table(title, header, rows, cells):
        out.extend([f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)])
        for r in rows:
            note = r.get("error") or r.get("skipped")
            out.append("| " + " | ".join([f"not measured: {note}"] + [""] * (len(header) - 1)
                                         if note else cells(r)) + " |")
        out.append("")

    def spread(r):
        return f"{r['seconds_per_step']:.4f} ({r['seconds_per_step_min']:.4f}-{r['seconds_per_step_max']:.4f})"

    tables = {
        "speed": ("Seconds per step", ["size", "K", "method", "steps per call", "s/step (min-max)", "s/seed-step",
                                       "first call s"],
                  lambda r: [str(r["size"]), str(r["k"]), r["method"], str(r["steps_per_call"]), spread(r),
                             f"{r['seconds_per_seed_step']:.4f}", f"{r['first_call_seconds']:.1f}"]),
        "precision": ("Precision (denoising, sigma 25, one seed)",
                      ["precision", "crop", "steps", "wall s", "s/step", "PSNR input", "PSNR final", "PSNR ema",
                       "best ema (iteration)"],
                      lambda r: [r["precision"], str(r["crop"]), str(r["num_iter"]), f"{r['seconds']:.1f}",
                                 f"{r['seconds_per_step']:.4f}", f"{r['psnr_input']:.2f}", f"{r['psnr_final']:.2f}",
                                 f"{r['psnr_ema']:.2f}", f"{r['psnr_ema_best']:.2f} ({r['psnr_ema_best_iteration']})"]),
        "determinism": ("Two identical fits in one process", ["XLA flags added", "steps", "s/step",
                                                              "bitwise equal", "max abs difference"],
                        lambda r: [f"`{r['xla_flags']}`" if r["xla_flags"] else "none", str(r["num_iter"]),
                                   f"{r['seconds_per_step']:.4f}", str(r["bitwise_equal"]),
                                   f"{r['max_abs_difference']:.2e}"]),
        "memory": ("Memory of one step (XLA buffer assignment)",
                   ["size", "K", "remat", "state MB", "temporaries MB", "peak MB"],
                   lambda r: [str(r["size"]), str(r["k"]), str(r["remat"]), f"{r['state_bytes'] / MB:.0f}",
                              f"{r['temp_bytes'] / MB:.0f}", f"{r['peak_bytes'] / MB:.0f}"]),
        "loop": ("Steps per compiled call (one seed)", ["steps per call", "s/step (min-max)", "first call s"],
                 lambda r: [str(r["steps_per_call"]), spread(r), f"{r['first_call_seconds']:.1f}"]),
    }
    for name, rows in report["sections"].items():
        title, header, cells = tables[name]
        table(title, header, rows, cells)
    return "\n".join(out)


def environment(plan: Plan) -> dict:
    return {"backend": jax.default_backend(), "device_kind": jax.devices()[0].device_kind,
            "devices": jax.device_count(), "jax": jax.__version__, "net": plan.net_name,
            "xla_flags": os.environ.get("XLA_FLAGS", "")}


RUNNERS = {"speed": speed_rows, "precision": precision_rows, "determinism": determinism_rows,
           "memory": memory_rows, "loop": loop_rows}


def run(plan: Plan, out_dir: str, sections, clock: Clock) -> dict:
    """Run `sections` in order, rewriting the report after each; returns it."""
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ValueError(f"unknown sections {unknown}; expected some of {SECTIONS}")
    os.makedirs(out_dir, exist_ok=True)
    report = {"environment": environment(plan), "sections": {}, "seconds": {}}
    for name in sections:
        t0 = time.perf_counter()
        try:
            report["sections"][name] = RUNNERS[name](plan, clock)
        except Exception as e:  # one failing section must not lose the others' numbers
            report["sections"][name] = [{"error": f"{type(e).__name__}: {e}"}]
            print(f"{name}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        report["seconds"][name] = time.perf_counter() - t0
        with open(os.path.join(out_dir, "accelerator.json"), "w") as f:
            json.dump(report, f, indent=2)
        with open(os.path.join(out_dir, "accelerator.md"), "w") as f:
            f.write(markdown(report))
    return report


def main(argv):
    del argv
    dip_jax.configure_xla()  # the library's XLA defaults, before the first JAX computation
    plan = plan_from_flags()
    if _CHILD.value:
        print(json.dumps(repeatability_row(plan)))
        return
    if not _OUT_DIR.value:
        raise app.UsageError("--out_dir is required")
    print(markdown(run(plan, _OUT_DIR.value, _SECTIONS.value, Clock(_DEADLINE.value))))


if __name__ == "__main__":
    app.run(main)
