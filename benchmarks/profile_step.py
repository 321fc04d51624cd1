r"""Where a DIP step's time goes: a `jax.profiler` trace of a few steps, summed by XLA op kind.

    python -m benchmarks.profile_step --size=256 --steps=3 --trace_dir=/tmp/dip_profile

Runs the standard fit step (backtracking on, as `benchmarks.speed`) after a warm-up, traces
`--steps` steps, and prints the milliseconds per step of each kind of XLA op (the op name
without its numeric suffix: `transpose_copy_fusion`, `convolution`, ...) and the largest
single ops. The trace stays in `--trace_dir` (open its perfetto_trace.json.gz in
ui.perfetto.dev or TensorBoard). On XLA's CPU backend the op events cover the thunks that
run on the calling thread; work a thunk hands to the thread pool (most convolution FLOPs)
shows as wall time between events, so the sum is less than the step time printed beside it.
"""

import glob
import gzip
import json
import os

import jax
from absl import app, flags

import dip_jax
from benchmarks.measure import advancing, benchmark_net, op_times, seconds_per_call, seeds_stepper

_SIZE = flags.DEFINE_integer("size", 256, "Square image side.")
_NET = flags.DEFINE_string("net", "standard", "A name from dip_jax.models.names().")
_STEPS = flags.DEFINE_integer("steps", 3, "Steps traced.")
_TOP = flags.DEFINE_integer("top", 15, "Rows of each table.")
_TRACE_DIR = flags.DEFINE_string("trace_dir", "/tmp/dip_profile", "Where the trace is written (must not exist).")

def main(argv):
    del argv
    dip_jax.configure_xla()  # the library's XLA defaults, before the first JAX computation
    if os.path.exists(_TRACE_DIR.value):
        raise app.UsageError(f"--trace_dir {_TRACE_DIR.value} exists; give a new folder")
    size = _SIZE.value
    # one seed's step, as benchmarks.speed times it
    call = advancing(*seeds_stepper(benchmark_net(_NET.value, size), 1, "sequential", size))
    seconds_per_call(call, 2)  # compile and warm up
    with jax.profiler.trace(_TRACE_DIR.value, create_perfetto_trace=True):
        step_ms = seconds_per_call(call, _STEPS.value) * 1e3
    trace = sorted(glob.glob(os.path.join(_TRACE_DIR.value, "**", "perfetto_trace.json.gz"), recursive=True))[-1]
    with gzip.open(trace) as f:
        events = json.load(f)
    events = events["traceEvents"] if isinstance(events, dict) else events
    by_kind, by_op = op_times(events, _STEPS.value)
    total = sum(by_kind.values())
    print(f"{_NET.value} at {size}x{size}: {step_ms:.0f} ms per step (traced), {total:.0f} ms of it in op events")
    print("| op kind | ms / step | share of op time |\n|---|---|---|")
    for kind, ms in sorted(by_kind.items(), key=lambda kv: -kv[1])[: _TOP.value]:
        print(f"| {kind} | {ms:.1f} | {ms / total:.0%} |")
    print("\n| op | ms / step |\n|---|---|")
    for name, ms in sorted(by_op.items(), key=lambda kv: -kv[1])[: _TOP.value]:
        print(f"| {name} | {ms:.1f} |")
    print(f"\ntrace: {trace}")


if __name__ == "__main__":
    app.run(main)
