"""Data-parallel training on ``torch.distributed``, as ``torchrun`` launches it.

    torchrun --nproc-per-node 2 -m ppvae fit data.csv -o runs/x

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) :func:`ranks` joins the process
group (gloo on the CPU, NCCL on CUDA, each process on GPU ``LOCAL_RANK``), and a fit runs
in every process on its own shard of the rows (:mod:`ppvae.data.split`) with one model:

- :meth:`Synchroniser.start` copies rank 0's initial parameters to every rank and gives
  each rank its own random stream (seed + rank), so a run is reproducible for a fixed
  world size;
- after every backward pass, :meth:`Synchroniser.gradients` averages in one all-reduce the
  gradients of the module-local parameters (what DistributedDataParallel does), the step's
  loss and the objective's metrics: stateful objectives (GECO's multiplier, which follows
  the reconstruction error; annealing, which follows the step count) update from the same
  numbers on every rank and stay in step;
- epoch and validation losses are averaged over all rows (:meth:`Synchroniser.average`), so
  early stopping and divergence rollbacks decide the same on every rank, and the stop is
  agreed explicitly (:meth:`Synchroniser.agree`);
- ``batch_size`` stays the number of rows of one optimiser step, over all processes
  (each takes ``batch_size / world``), so an epoch takes as many steps on the same
  effective batch as in one process, only faster;
- only rank 0 writes checkpoints and the model.

Collectives time out after ``PPVAE_DIST_TIMEOUT`` seconds (default 600): a rank that dies
makes the others fail with a :class:`~ppvae.training.TrainingError` (``torchrun`` also
stops them), and no model is written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from ppvae.training import TrainingError

TIMEOUT_ENV = "PPVAE_DIST_TIMEOUT"
RANK_SEED_STRIDE = 7919


def _collective(fn):
    """Run a collective; a lost rank or a timeout becomes a TrainingError."""

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RuntimeError as exc:  # gloo/NCCL: connection closed by a peer, timeout
            raise TrainingError(
                f"data-parallel training lost contact with another process ({exc}); a rank "
                "failed or was stopped: see its own error above. No model was written"
            ) from None

    return wrapped


class Synchroniser:
    """The collectives of one data-parallel fit (see the module docstring)."""

    def __init__(self, rank: int, world: int, device: torch.device):
        self.rank, self.world, self.device = rank, world, device

    @_collective
    def start(self, module: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers on every rank; a random stream per rank."""
        self.share_state(module)
        torch.manual_seed(torch.initial_seed() + RANK_SEED_STRIDE * self.rank)

    @_collective
    def share_state(self, module: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers of ``module`` on every rank (e.g. a prior fitted
        after training to each rank's own rows)."""
        with torch.no_grad():
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, src=0)

    @_collective
    def gradients(self, params: list[torch.Tensor], loss: float, metrics: dict) -> float:
        """Average the gradients, the loss and the numeric ``metrics`` (in place) over the
        ranks; returns the average loss."""
        grads = [p.grad for p in params if p.grad is not None]
        keys = sorted(k for k, v in metrics.items() if isinstance(v, (int, float)))
        stats = torch.tensor([loss, *(metrics[k] for k in keys)], device=self.device)
        flat = torch.cat([g.reshape(-1) for g in grads] + [stats.to(grads[0].dtype)])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()
        values = flat[offset:].tolist()
        metrics.update(zip(keys, values[1:]))
        return float(values[0])

    @_collective
    def average(self, value: float, weight: float) -> float:
        """The ``weight``-weighted mean of ``value`` over the ranks."""
        t = torch.tensor([value * weight, weight], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t[0] / t[1])

    @_collective
    def agree(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is True on any."""
        t = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    @_collective
    def share(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (pickled)."""
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


@dataclass
class Ranks:
    """This process's place in the run: ``rank`` of ``world`` (0 of 1 alone)."""

    rank: int = 0
    world: int = 1
    sync: Synchroniser | None = None

    @property
    def writer(self) -> bool:
        """Whether this process writes checkpoints and the model (rank 0)."""
        return self.rank == 0


def ranks(device: torch.device) -> Ranks:
    """This process's :class:`Ranks`; under ``torchrun`` joins the process group first."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks()
    if not dist.is_initialized():
        timeout = timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, "600")))
        backend = "nccl" if device.type == "cuda" else "gloo"
        try:
            dist.init_process_group(backend, timeout=timeout)
        except (RuntimeError, ValueError) as exc:
            raise TrainingError(
                f"could not join the torchrun process group ({backend}): {exc}"
            ) from None
    rank, world = dist.get_rank(), dist.get_world_size()
    return Ranks(rank, world, Synchroniser(rank, world, process_device(device)))


def process_device(device: torch.device) -> torch.device:
    """The device of this process: CUDA device ``LOCAL_RANK`` under ``torchrun``."""
    if device.type != "cuda" or device.index is not None or "LOCAL_RANK" not in os.environ:
        return device
    device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    torch.cuda.set_device(device)
    return device


def is_writer() -> bool:
    """Whether this process writes outputs: rank 0, or a process outside ``torchrun``."""
    return not dist.is_initialized() or dist.get_rank() == 0
