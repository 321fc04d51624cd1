"""The flags that place a command's process among others, for restore and benchmarks.quality.

Apart from `experiments.shards` so that a command's flags are defined, and its --help printed,
before JAX is imported.
"""

from __future__ import annotations


def define_flags() -> dict:
    """The command-line flags that place a process among others (for a command's module to call once)."""
    from absl import flags

    return {
        "shard": flags.DEFINE_string(
            "shard", None, "With a folder of images: restore share i of N of it (i/N, 0 <= i < N), or the share of "
            "this task of a Slurm job array (slurm). Default: jax.distributed's process index and count "
            "(--distributed), else all of it."),
        "distributed": flags.DEFINE_bool(
            "distributed", False, "Start with jax.distributed.initialize(): one process per host (or device), "
            "which finds its place itself on Slurm (srun), Open MPI and TPU pods, or from the three flags below."),
        "coordinator_address": flags.DEFINE_string("coordinator_address", None,
                                                   "--distributed: host:port of process 0."),
        "num_processes": flags.DEFINE_integer("num_processes", None, "--distributed: how many processes in all."),
        "process_id": flags.DEFINE_integer("process_id", None,
                                           "--distributed: this process's index (0: the coordinator)."),
    }


def shard_from_flags(holders: dict, folder: bool):
    """The share `define_flags`' flags give this process (None: the whole folder, or one image).

    With `folder`, jax.distributed only tells each process its place (`distributed_shard`); for
    one image it stays joined, its seeds on a mesh of every process's devices.
    """
    from experiments.shards import distributed_shard, initialize_distributed, parse_shard

    shard = parse_shard(holders["shard"].value) if holders["shard"].value else None
    where = tuple(holders[k].value for k in ("coordinator_address", "num_processes", "process_id"))
    if holders["distributed"].value and folder:
        shard = shard or distributed_shard(*where)
    elif holders["distributed"].value:
        initialize_distributed(*where)
    return shard
