"""Training checkpoints: everything a fit needs to continue exactly where it stopped.

A checkpoint is one file written with :func:`torch.save` (temporary file, then
``os.replace``, so a crash leaves the previous checkpoint intact) and read back with
``torch.load(weights_only=True)``: tensors and plain Python values only, so a tampered file
cannot run code. It holds the module's ``state_dict`` and the values of every optimised
tensor, Adam's state, the objective's :meth:`~ppvae.objectives.Objective.state_dict`, the
torch RNG states (CPU, the minibatch generator, CUDA when used), the early-stopping state,
the history so far, the epoch/step position, and a fingerprint of the fit's settings and
data, so a checkpoint of another fit is refused instead of silently continued.
See ``docs/long_fits.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

FORMAT = "ppvae-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint cannot be read, or was written by a different fit (data or settings)."""


@dataclass
class Checkpointing:
    """Where and how often a fit writes its checkpoint.

    Checkpoints are written at the end of an epoch: every ``every_epochs`` epochs (None: not
    by count), and at the first epoch end ``every_minutes`` after the previous checkpoint
    (None: not by time), whichever comes first. ``resume``: continue from the checkpoint at
    ``path`` (it must exist). ``settings``: the fit's options, part of the fingerprint.
    """

    path: Path
    every_epochs: int | None = 10
    every_minutes: float | None = 10.0
    resume: bool = False
    settings: dict[str, Any] = field(default_factory=dict)  # the caller's fit settings
    fingerprint: dict[str, str] = field(default_factory=dict, repr=False)  # set by train
    _last: float = field(default_factory=time.monotonic, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.every_epochs is not None and (
            isinstance(self.every_epochs, bool) or int(self.every_epochs) < 1
        ):
            raise ValueError(
                "every_epochs (CLI: --checkpoint-every) must be a positive number of epochs, "
                f"got {self.every_epochs!r}"
            )
        if self.every_minutes is not None and not float(self.every_minutes) > 0:
            raise ValueError(
                "every_minutes (CLI: --checkpoint-minutes) must be a positive number of "
                f"minutes, got {self.every_minutes!r}"
            )

    def due_by_time(self) -> bool:
        return (
            self.every_minutes is not None
            and time.monotonic() - self._last >= 60.0 * self.every_minutes
        )

    def due_by_epoch(self, epochs_done: int) -> bool:
        return self.every_epochs is not None and epochs_done % int(self.every_epochs) == 0

    def write(self, state: dict[str, Any]) -> None:
        write_checkpoint(self.path, {**state, "fingerprint": self.fingerprint})
        self._last = time.monotonic()


def _tensors(obj: Any) -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor held by ``obj`` (a table's attributes, walked through dicts), by name."""
    items = vars(obj).items() if not isinstance(obj, Mapping) else obj.items()
    for name, value in sorted(items, key=lambda kv: str(kv[0])):
        if isinstance(value, torch.Tensor):
            yield str(name), value
        elif isinstance(value, Mapping):
            yield from ((f"{name}.{k}", v) for k, v in _tensors(value))


def fingerprint(settings: Mapping[str, Any], *tables: Any) -> dict[str, str]:
    """``{"settings": JSON of the fit's settings, "data": SHA-256 of the tables' tensors}``."""
    digest = hashlib.sha256()
    for i, table in enumerate(tables):
        if table is None:
            continue
        for name, tensor in _tensors(table):
            t = tensor.detach().cpu().contiguous()
            digest.update(f"{i}:{name}:{t.dtype}:{tuple(t.shape)}".encode())
            digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return {
        "settings": json.dumps(settings, sort_keys=True, default=repr),
        "data": digest.hexdigest(),
    }


def write_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` (tensors and plain values) to ``path`` atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, **state}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_checkpoint(path: str | os.PathLike, expected: Mapping[str, str]) -> dict[str, Any]:
    """Read a checkpoint and check it belongs to the fit whose :func:`fingerprint` is
    ``expected``; raises :class:`CheckpointError` otherwise."""
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(
            f"no checkpoint to resume from at {source}; start the fit without resume "
            "(CLI: without --resume)"
        )
    try:
        state = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refused, truncated or not a torch file
        raise CheckpointError(
            f"{source} is not a readable ppvae checkpoint ({type(exc).__name__}: {exc}); "
            "delete it and start the fit again"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{source} is not a ppvae checkpoint")
    if int(state.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{source} was written by a newer ppvae; upgrade ppvae to resume")
    found = state.get("fingerprint", {})
    if found.get("settings") != expected["settings"]:
        raise CheckpointError(
            f"{source} was written by a fit with other settings "
            f"({_differences(found.get('settings'), expected['settings'])}); resume with the "
            "same settings, or start a new fit without resume (CLI: --force instead of --resume)"
        )
    if found.get("data") != expected["data"]:
        raise CheckpointError(
            f"{source} was written by a fit on other data (rows, values or split differ); "
            "resume with the same table, or start a new fit without resume "
            "(CLI: --force instead of --resume)"
        )
    return state


def _differences(old: str | None, new: str) -> str:
    before, after = json.loads(old or "{}"), json.loads(new)
    keys = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    return ", ".join(
        f"{k}: {before.get(k)!r} in the checkpoint, {after.get(k)!r} now" for k in keys
    )


def rng_state(device: torch.device, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The random streams training draws from: torch's global CPU (and CUDA) state, which
    Pyro samples with, and the minibatch ``generator``."""
    state = {"torch": torch.get_rng_state(), "batches": generator.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(
    state: Mapping[str, torch.Tensor], device: torch.device, generator: torch.Generator
) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    generator.set_state(state["batches"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def checkpointing(
    checkpoint: str | os.PathLike | Checkpointing | None,
    resume: bool,
    settings: Mapping[str, Any],
) -> Checkpointing | None:
    """The :class:`Checkpointing` of a fit given ``fit(checkpoint=..., resume=...)``."""
    if checkpoint is None:
        if resume:
            raise ValueError(
                "resume=True needs the checkpoint to resume from: fit(df, checkpoint=path, "
                "resume=True)"
            )
        return None
    policy = checkpoint if isinstance(checkpoint, Checkpointing) else Checkpointing(checkpoint)
    policy.resume = bool(policy.resume or resume)
    policy.settings = {k: _plain_setting(v) for k, v in settings.items()}
    return policy


def _plain_setting(value: Any) -> Any:
    """A setting as JSON-able data: a prior or objective instance by its ``config()``."""
    return value.config() if hasattr(value, "config") else value
