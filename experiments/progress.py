"""Progress lines with an ETA, and the run's timings, from a fit's callbacks."""

from __future__ import annotations

import time

import jax
import numpy as np
from absl import logging


def format_seconds(seconds: float) -> str:
    """'42 s', '7 min 05 s', '2 h 03 min'."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Progress:
    """A fit callback: logs a line every `every` steps, and at least every `interval` seconds, with the rate
    and the time left (a step of a large tiled photo takes minutes on a CPU: 50 steps would be hours).

    A run may fit in `segments` parts (groups of images of one shape, or chunks of seeds),
    each counting its steps from `first_step` (a resumed fit) to `num_iter` again; the ETA
    counts the steps of the parts still to come. The first call of each part waits for the
    device (compilation included); `seconds_per_iter` and `compile_seconds` come from the
    calls after and before it.
    """

    def __init__(self, num_iter: int, every: int, segments: int = 1, first_step: int = 0, clock=time.perf_counter,
                 interval: float = 60.0):
        self.num_iter, self.every, self.segments, self.clock = num_iter, every, segments, clock
        self.interval = interval
        self.start = clock()
        self.first = None  # (step, time) of the first completed call: compilation included
        self.last = None
        self.segment = 0
        self.segment_start = first_step
        self.steps_timed, self.seconds_timed = 0, 0.0  # after each part's first call
        self._last_step = None
        self._mark = None  # (step, time) of the last line
        self.diverged_at = None  # the first logged step whose loss was not finite

    def steps_left(self, step: int) -> int:
        return (self.num_iter - step) + (self.segments - 1 - self.segment) * (self.num_iter - self.segment_start)

    def eta(self, step: int) -> float:
        rate = self.steps_timed / self.seconds_timed if self.seconds_timed > 0 else float("nan")
        return self.steps_left(step) / rate

    def __call__(self, step: int, m: dict) -> None:
        if self._last_step is not None and step <= self._last_step:  # the next part of the run starts
            self.segment += 1
            self._mark = None
        self._last_step = step
        now = self.clock()
        if self._mark is None:  # a part's first call: wait for it, so that compilation is not timed as steps
            jax.block_until_ready(m)
            now = self.clock()
            if self.first is None:
                self.first = (step, now)
            self._mark = (step, now)
        if step == self.num_iter:  # steps are dispatched asynchronously: wait for the last
            jax.block_until_ready(m)
            now = self.clock()
        due = step % self.every == 0 or step == self.num_iter
        if not due and now - self._mark[1] >= self.interval:  # dispatch runs ahead: time the step itself
            jax.block_until_ready(m)
            now = self.clock()
            due = True
        if due:
            v = {k: float(np.mean(x)) for k, x in m.items()}  # the mean over seeds, if several
            self.steps_timed += step - self._mark[0]
            self.seconds_timed += now - self._mark[1]
            self._mark = (step, now)
            if not np.isfinite(v["loss"]) and self.diverged_at is None:
                self.diverged_at = step
                logging.warning("the loss is %s at step %d: the fit diverged; try a lower --lr, or "
                                "--config.fit.backtrack=True to step back from such jumps", v["loss"], step)
            parts = [f"step {step}/{self.num_iter}"]
            if self.segments > 1:
                parts[0] += f" (part {self.segment + 1}/{self.segments})"
            parts.append(f"loss {v['loss']:.5f}")
            if "psnr_obs" in v:  # none where the observation is a placeholder
                parts.append(f"psnr_obs {v['psnr_obs']:.2f}")
            if "psnr_clean" in v:
                parts += [f"psnr {v['psnr_clean']:.2f}", f"psnr_ema {v['psnr_ema_clean']:.2f}"]
            if self.seconds_timed > 0:
                rate = self.steps_timed / self.seconds_timed
                parts.append(f"{rate:.2f} it/s" if rate >= 0.5 else f"{1 / rate:.1f} s/it")  # slow: seconds a step
                parts.append(f"ETA {format_seconds(self.eta(step))}")
            logging.info("  ".join(parts))
        self.last = (step, now)

    @property
    def ran(self) -> bool:
        return self.first is not None

    def seconds_per_iter(self) -> float:
        """Seconds per step after each part's first call; NaN when no step was timed."""
        if self.seconds_timed > 0 and self.steps_timed:
            return self.seconds_timed / self.steps_timed
        if self.first is None or self.last is None or self.last[0] <= self.first[0]:
            return float("nan")
        return (self.last[1] - self.first[1]) / (self.last[0] - self.first[0])

    def timings(self) -> dict:
        """seconds (the whole run so far), seconds_per_iter and compile_seconds (to the first call's end)."""
        return {"seconds": self.clock() - self.start,
                "seconds_per_iter": self.seconds_per_iter() if self.ran else None,
                "compile_seconds": self.first[1] - self.start if self.ran else None}


def quiet_orbax() -> None:
    """Keep orbax's own log lines out of the progress log (the CLI's choice): its per-save notices, and
    its errors about a damaged checkpoint, which dip_jax.checkpoint reports in one line of its own."""
    handler = logging.get_absl_handler()
    if not any(getattr(f, "__name__", "") == "_quiet_orbax" for f in handler.filters):
        handler.addFilter(_quiet_orbax)


def _quiet_orbax(record) -> bool:
    return "orbax" not in record.pathname or record.levelno >= 50  # logging.CRITICAL
