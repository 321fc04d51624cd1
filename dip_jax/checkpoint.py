"""Saving and resuming a fit (orbax-checkpoint).

A checkpoint is one step folder under a directory, holding three items:
- `state`: the whole `FitState` (parameters, optimiser state, averaged output, backtracking
  copies, early-stopping state, key, step). Typed PRNG keys are stored as their raw key
  data (`jax.random.key_data`) and wrapped back on restore with the template's key type.
- `history`: the per-step metrics so far, so a resumed run reports the whole curve.
- `metadata`: JSON describing what was fitted (the fit's config without `num_iter`, the
  observation's and the code's shapes, and whatever the caller adds, e.g. the CLI's
  config). `restore` refuses a checkpoint whose metadata differs from the caller's, with
  the first differences in one line, before touching anything.

Because step t's perturbation comes from fold_in(key, t), a fit resumed from a checkpoint
takes exactly the steps of one that never stopped: bitwise the same result on CPU.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Optional

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from dip_jax import fit as fit_lib

ITEMS = ("state", "history", "metadata")


class CheckpointError(ValueError):
    """A checkpoint directory that is missing, unreadable or from another run."""


def metadata(config: fit_lib.FitConfig, observation_shape, code_shape, **extra) -> dict:
    """What a checkpoint must match to be resumed: settings and shapes, not the length."""
    fit_config = dataclasses.asdict(config)
    fit_config.pop("num_iter")  # a run may be resumed to go further than first planned
    out = {"fit_config": fit_config, "observation_shape": list(observation_shape), "code_shape": list(code_shape)}
    out.update(extra)
    return json.loads(json.dumps(out))  # tuples -> lists, as they come back from disk


def _manager(directory: str, read_only: bool) -> ocp.CheckpointManager:
    if read_only:  # never creates, cleans or deletes anything
        options = ocp.CheckpointManagerOptions(read_only=True, save_interval_steps=0, max_to_keep=None, create=False)
    else:
        options = ocp.CheckpointManagerOptions(max_to_keep=2, create=True, enable_async_checkpointing=False)
    return ocp.CheckpointManager(os.path.abspath(directory), options=options, item_names=ITEMS)


def _is_key(x) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _to_arrays(tree):
    return jax.tree_util.tree_map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def save(directory: str, state: fit_lib.FitState, meta: dict, history: Optional[dict] = None) -> int:
    """Write `state` (and `history`) as the checkpoint of its step; keeps the last two."""
    step = int(np.max(state.step))
    existing = os.path.join(directory, str(step))
    if os.path.isdir(existing):
        try:  # a readable checkpoint of this step is this state already (the fit is deterministic in its step)
            _metadata(directory, step)
            return step
        except Exception:  # a damaged one (a save cut short): kept aside, not deleted, and saved anew
            aside = f"{existing}.damaged"
            while os.path.exists(aside):
                aside += "_"
            os.rename(existing, aside)
            logging.warning("moved the damaged checkpoint %s to %s", existing, aside)
    history = {k: np.asarray(v) for k, v in (history or {}).items()}
    with _manager(directory, read_only=False) as manager:
        manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(_to_arrays(state)),
                history=ocp.args.StandardSave(history),
                metadata=ocp.args.JsonSave(meta),
            ),
            force=True,
        )
        manager.wait_until_finished()
    return step


def _steps(directory: str) -> list[int]:
    """The steps saved in `directory`, newest first, or CheckpointError."""
    if not os.path.isdir(directory):
        raise CheckpointError(f"no checkpoint to resume: {directory} does not exist")
    try:
        with _manager(directory, read_only=True) as manager:
            steps = sorted(manager.all_steps(), reverse=True)
    except Exception as e:  # orbax's errors for a damaged folder vary by cause
        raise CheckpointError(f"cannot read the checkpoints in {directory}: {type(e).__name__}") from None
    if not steps:
        raise CheckpointError(f"no checkpoint to resume in {directory}")
    return steps


def _metadata(directory: str, step: int) -> dict:
    with _manager(directory, read_only=True) as manager:
        return manager.restore(step, args=ocp.args.Composite(metadata=ocp.args.JsonRestore())).metadata


def latest(directory: str) -> tuple[int, dict]:
    """(step, metadata) of the newest readable checkpoint in `directory`, or CheckpointError.

    A newest checkpoint whose metadata cannot be read (a save cut short) is skipped with a
    warning for the one before it.
    """
    steps = _steps(directory)
    for i, step in enumerate(steps):
        try:
            return step, _metadata(directory, step)
        except Exception as e:
            if i + 1 == len(steps):
                raise CheckpointError(f"cannot read the checkpoint in {directory}: {type(e).__name__}") from None
            logging.warning("the checkpoint of step %d in %s is damaged (%s); trying step %d", step, directory,
                            type(e).__name__, steps[i + 1])
    raise AssertionError("unreachable")


def differences(found: Any, expected: Any, prefix: str = "", where: str = "in the checkpoint") -> list[str]:
    """'name: X in the checkpoint, Y here' for every leaf that differs (`where` names what was found)."""
    if isinstance(found, dict) and isinstance(expected, dict):
        out = []
        for k in sorted(set(found) | set(expected)):
            out += differences(found.get(k, "<absent>"), expected.get(k, "<absent>"), f"{prefix}{k}.", where)
        return out
    if found != expected:
        return [f"{prefix[:-1]}: {found!r} {where}, {expected!r} here"]
    return []


def check(directory: str, meta: dict) -> int:
    """The newest step in `directory` if its metadata is `meta`; otherwise CheckpointError."""
    step, found = latest(directory)
    diff = differences(found, meta)
    if diff:
        more = f" (and {len(diff) - 3} more)" if len(diff) > 3 else ""
        raise CheckpointError(
            f"the checkpoint in {directory} (step {step}) is from another run: {'; '.join(diff[:3])}{more}"
        )
    return step


def restore(directory: str, template: fit_lib.FitState, meta: dict) -> tuple[fit_lib.FitState, dict]:
    """(state, history) of the newest checkpoint that reads whole, checked against `meta` and `template`.

    `template` is a state of the same fit (e.g. `fit.init_state`, or its `jax.eval_shape`):
    it gives the tree structure, shapes, dtypes and the PRNG key type. A damaged checkpoint
    (a file cut short when the process was killed during the save) is skipped, with a
    warning, for the previous one; CheckpointError when none can be restored.
    """
    newest = check(directory, meta)
    arrays = _to_arrays(template)
    abstract = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), arrays)
    candidates = [s for s in _steps(directory) if s <= newest]
    for i, step in enumerate(candidates):
        try:
            with _manager(directory, read_only=True) as manager:
                restored = manager.restore(
                    step,
                    args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                            history=ocp.args.StandardRestore()),
                )
            break
        except Exception as e:
            if i + 1 == len(candidates):
                raise CheckpointError(f"cannot restore the checkpoint in {directory}: {type(e).__name__}") from None
            logging.warning("the checkpoint of step %d in %s is damaged (%s); resuming from step %d instead",
                            step, directory, type(e).__name__, candidates[i + 1])

    def wrap(t, x):
        return jax.random.wrap_key_data(x, impl=jax.random.key_impl(t)) if _is_key(t) else x

    state = jax.tree_util.tree_map(wrap, template, restored.state)
    return state, {k: np.asarray(v) for k, v in restored.history.items()}
