"""Saving and loading fitted models as plain directories, with no pickled code.

A saved model is a directory::

    ppvae.json           format name and version, constructor arguments, layout, metadata
    spec.yaml            the same constructor arguments, human-readable (a valid spec file)
    transformer.json     the fitted column transforms (numbers and strings only)
    weights.pt           the module's ``state_dict``, read with ``torch.load(weights_only=True)``
    history.csv          per-epoch losses;  steps.csv: per-step objective metrics
    checksums.json       the SHA-256 of every other file, verified by ``load``

The directory is written under a temporary name and renamed into place (``ppvae.outputs``),
so a crash never leaves a half-written model, and an existing model is replaced only with
``force=True``. ``load`` refuses a model whose files changed since they were saved (a flipped
bit, an edited transform) and weights that are not finite.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from ppvae.data import TableTransformer
from ppvae.data.layout import Layout
from ppvae.detector_resampling import restore_detector
from ppvae.model import TabularModel
from ppvae.objectives import objectives
from ppvae.outputs import atomic_dir, replace_path  # noqa: F401 (replace_path: re-exported)
from ppvae.spec import _plain, dump_spec

if TYPE_CHECKING:
    from ppvae.vae import TabularVAE

FORMAT = "ppvae-model"
FORMAT_VERSION = 1
#: chain options of the tabular model as they were before a saved model spelled them out
#: (chain_rank 16 until 2026-11-29; point masses out of the chain until then)
SAVED_WITHOUT = {"chain_rank": 16, "chain_point_masses": False}
FILES = ("ppvae.json", "transformer.json", "weights.pt")
CHECKSUMS = "checksums.json"


class ModelFormatError(ValueError):
    """A directory is not a ppvae model, is corrupted, or was written by a newer ppvae."""


def save(
    vae: TabularVAE, path: str | os.PathLike, force: bool = False, allow_diverged: bool = False
) -> Path:
    """Write a fitted ``vae`` to directory ``path``; returns the path. A model whose training
    ended diverged (``vae.divergence_``) is refused unless ``allow_diverged``."""
    from ppvae.training import TrainingError
    from ppvae.version import __version__

    vae._check_fitted()
    if getattr(vae, "divergence_", None) and not allow_diverged:
        raise TrainingError(
            f"not saving a diverged model: {vae.divergence_}; refit with a lower learning rate "
            "(lr), or pass allow_diverged=True (CLI: --allow-diverged) to save it anyway"
        )
    target = Path(path)
    params = _plain(vae.get_params())
    params["prior"] = _plain(vae.model_.prior.config())
    params["objective"] = _plain(vae.objective_.config())
    params["likelihood"] = _plain(getattr(vae.model_, "likelihood", params["likelihood"]))
    if type(vae.model_) is TabularModel:  # its chain options spelled out, defaults included
        spec = params["model"] if isinstance(params["model"], dict) else {"name": params["model"]}
        params["model"] = {**spec, **vae.model_.chain_options}
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "ppvae_version": __version__,
        "params": params,
        "layout": vae.layout_.to_dict(),
        "objective_state": vae.objective_.state_dict(),
        "best_epoch": int(vae.best_epoch_),
        "n_rows": int(vae.n_rows_),
        "checksums": CHECKSUMS,
    }
    with atomic_dir(target, "model", force) as tmp:
        (tmp / "ppvae.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        (tmp / "spec.yaml").write_text(dump_spec(params), encoding="utf-8")
        (tmp / "transformer.json").write_text(
            json.dumps(vae.transformer_.to_dict()), encoding="utf-8"
        )
        torch.save(
            {k: v.detach().cpu() for k, v in vae.model_.state_dict().items()}, tmp / "weights.pt"
        )
        vae.history_.to_csv(tmp / "history.csv", index=False)
        vae.step_history_.to_csv(tmp / "steps.csv", index=False)
        write_checksums(tmp)
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksums(root: Path) -> None:
    """Write ``checksums.json``: the SHA-256 of every file under ``root``."""
    files = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.name != CHECKSUMS
    )
    sums = {name: _sha256(root / name) for name in files}
    (root / CHECKSUMS).write_text(
        json.dumps({"algorithm": "sha256", "files": sums}, indent=1), encoding="utf-8"
    )


def verify_checksums(root: Path) -> None:
    """Raise :class:`ModelFormatError` unless every file listed in ``checksums.json`` is a
    file with the recorded SHA-256."""
    if not (root / CHECKSUMS).is_file():
        raise ModelFormatError(
            f"{root} could not be loaded: {CHECKSUMS} is missing; the model is corrupted: "
            "save it again"
        )
    record = _read_json(root / CHECKSUMS)
    files = record.get("files") if isinstance(record, dict) else None
    if not isinstance(files, dict) or not all(f in files for f in FILES):
        raise ModelFormatError(f"{root}/{CHECKSUMS} is corrupted: it does not list {FILES}")
    for name, expected in files.items():
        path = root / str(name)
        if Path(str(name)).is_absolute() or ".." in Path(str(name)).parts:
            raise ModelFormatError(f"{root}/{CHECKSUMS} is corrupted: it names {name!r}")
        if not path.is_file():
            raise ModelFormatError(
                f"{root} could not be loaded: {name} is missing or is not a file; the model is "
                "corrupted: restore the file or save the model again"
            )
        if _sha256(path) != expected:
            raise ModelFormatError(
                f"{root} could not be loaded: {name} changed since the model was saved "
                "(checksum mismatch); the model is corrupted: restore the file or save the "
                "model again"
            )


def _check_finite(state: dict[str, Any], root: Path) -> None:
    bad = [
        k
        for k, v in state.items()
        if isinstance(v, torch.Tensor) and v.is_floating_point() and not torch.isfinite(v).all()
    ]
    if bad:
        raise ModelFormatError(
            f"{root}/weights.pt holds non-finite values (NaN or inf) in {bad[:5]}: the model "
            "is unusable; refit it"
        )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{path} is corrupted (not valid JSON: {exc})") from None


def load(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
    *,
    estimator: Callable[..., TabularVAE],
) -> TabularVAE:
    """Read a model written by :meth:`TabularVAE.save` into ``estimator(**params)`` (use
    ``ppvae.load``, which passes ``TabularVAE``)."""
    root = Path(path)
    if not root.is_dir():
        raise ModelFormatError(
            f"{root} is not a directory saved by ppvae (TabularVAE.save / ppvae fit)"
        )
    missing = [f for f in FILES if not (root / f).is_file()]
    if missing:
        raise ModelFormatError(
            f"{root} is not a ppvae model directory: missing {', '.join(missing)}"
        )
    meta = _read_json(root / "ppvae.json")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFormatError(f"{root}/ppvae.json does not describe a ppvae model")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelFormatError(
            f"{root} was written in model format {meta['format_version']} by ppvae "
            f"{meta.get('ppvae_version')}; this ppvae reads format {FORMAT_VERSION}: upgrade ppvae"
        )
    if meta.get("checksums") or (root / CHECKSUMS).exists():  # absent in models before 0.1
        verify_checksums(root)
    try:
        params = dict(meta["params"])
        params["device"] = str(device)
        model = params.get("model", "tabular")
        model = model if isinstance(model, dict) else {"name": model}
        if model.get("name", "tabular") == "tabular":  # chain options it was saved without:
            params["model"] = {**SAVED_WITHOUT, **model}  # the defaults of that time
        vae = estimator(**params)
        transformer = TableTransformer.from_dict(_read_json(root / "transformer.json"))
        module = vae._build_module(Layout.from_dict(meta["layout"]))
        state = torch.load(root / "weights.pt", map_location="cpu", weights_only=True)
        _check_finite(state, root)
        restore_detector(module, state)
        module.load_state_dict(state)
        objective = objectives.build(params["objective"])
        objective.load_state_dict(meta.get("objective_state", {}))
    except ModelFormatError:
        raise
    except Exception as exc:  # any inconsistency between the files is a corrupted model
        raise ModelFormatError(
            f"{root} could not be loaded as a ppvae model: {type(exc).__name__}: {exc}"
        ) from exc
    return vae._set_fitted(
        transformer,
        module.to(vae.device_),
        objective,
        history=_read_csv(root / "history.csv"),
        steps=_read_csv(root / "steps.csv"),
        best_epoch=int(meta.get("best_epoch", 0)),
        n_rows=int(meta.get("n_rows", 0)),
    )


def _read_csv(path: Path) -> pd.DataFrame:
    if path.exists() and not path.is_file():
        raise ModelFormatError(f"{path} is not a file: the model is corrupted; save it again")
    try:
        return pd.read_csv(path)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{path} is corrupted ({exc}); save the model again") from None
