"""One validation of every ``TabularVAE`` parameter, whatever the door: the constructor
(checked by ``fit``), a spec file or dict (``load_spec``), or the command line (``--set``).

Each message names the option, what it got and what to pass instead. Errors are
:class:`ParameterError` (a ``ValueError``; the CLI prints it and exits with code 2).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from numbers import Integral, Real
from typing import Any

import torch

from ppvae.marginal_calibration import CALIBRATIONS
from ppvae.registry import SpecError

MAX_VAL_FRACTION = 0.9
MAX_SEED = 2**63 - 1
CONTINUOUS = ("quantile", "mode_specific")
DEVICES = ("cpu", "cuda", "mps")


class ParameterError(SpecError):
    """A ``TabularVAE`` parameter has the wrong type or value; the message names it."""


def _fail(name: str, value: Any, expected: str) -> ParameterError:
    return ParameterError(f"{name} must be {expected}, got {value!r}")


def _integer(name: str, value: Any, low: int, expected: str, none: bool = False) -> None:
    if none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, Integral) or not low <= value:
        raise _fail(name, value, expected)


def _positive(name: str, value: Any, none: bool = False) -> None:
    what = "a positive integer" + (" or None (null in YAML)" if none else "")
    _integer(name, value, 1, f"{what}, e.g. {name}=8", none)


def _real(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _hidden(name: str, value: Any) -> None:
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise _fail(name, value, "a list of positive layer widths, e.g. hidden=[256, 256]")
    for width in value:
        if isinstance(width, bool) or not isinstance(width, Integral) or width < 1:
            raise _fail(name, value, "a list of positive layer widths, e.g. hidden=[256, 256]")


def _spec_like(kind: str, *instance_types: str) -> Callable[[str, Any], None]:
    """A registered name, a ``{name: ...}`` mapping, an instance with ``config()``, or an
    instance of one of ``instance_types`` (dotted class paths, imported on use)."""

    def accepted_instance(value: Any) -> bool:
        import importlib

        for path in instance_types:
            module, _, cls = path.rpartition(".")
            if isinstance(value, getattr(importlib.import_module(module), cls)):
                return True
        return callable(getattr(value, "config", None))

    def check(name: str, value: Any) -> None:
        if isinstance(value, (str, Mapping)) or accepted_instance(value):
            if isinstance(value, str) and not value.strip():
                raise _fail(name, value, f"a registered {kind} name")
            return
        raise _fail(
            name,
            value,
            f"a {kind} name, a mapping {{name: ..., options}} or a ppvae {kind}"
            + (" or a pyro.infer.ELBO" if instance_types else ""),
        )

    return check


def _likelihood(name: str, value: Any) -> None:
    from ppvae.likelihoods import likelihoods

    family = value.get("name") if isinstance(value, Mapping) else value  # {name, options}
    if not isinstance(family, str) or family not in likelihoods:
        raise _fail(name, value, f"one of {', '.join(likelihoods.names())}")


def _continuous(name: str, value: Any) -> None:
    if value not in CONTINUOUS:
        raise _fail(name, value, f"one of {', '.join(CONTINUOUS)}")


def _kinds(name: str, value: Any) -> None:
    from ppvae.data.schema import KINDS

    if value is None:
        return
    if not isinstance(value, Mapping):
        raise _fail(
            name, value, "a mapping of column name to kind, e.g. kinds={'zip': 'categorical'}"
        )
    for column, kind in value.items():
        if kind not in KINDS:
            raise ParameterError(
                f"kinds[{column!r}] = {kind!r} is not a column kind; use one of {', '.join(KINDS)}"
            )


def _missing_values(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple, set)):
        raise _fail(name, value, "a list of markers, e.g. missing_values=['?', 'NA']")
    for marker in value:
        if not isinstance(marker, (str, int, float)) or isinstance(marker, bool):
            raise _fail(name, value, "a list of strings or numbers, e.g. missing_values=['?']")


def _input_mask_rate(name: str, value: Any) -> None:
    if not _real(value) or not 0.0 <= float(value) <= 0.5:
        raise _fail(name, value, "a number in [0, 0.5] (the expected share of cells hidden)")


def _epochs(name: str, value: Any) -> None:
    _positive(name, value)


def _lr(name: str, value: Any) -> None:
    if not _real(value) or not 0 < value < 10:
        raise _fail(name, value, "a positive learning rate below 10, e.g. lr=1e-3")


def _auto(check: Callable[..., None], example: str, **options: Any) -> Callable[[str, Any], None]:
    """``check``, also accepting ``"auto"`` (``ppvae.budget`` adapts the value to the table)."""

    def checked(name: str, value: Any) -> None:
        if isinstance(value, str) and value == "auto":
            return
        try:
            check(name, value, **options)
        except ParameterError:
            raise _fail(name, value, f'"auto" (adapted to the table) or {example}') from None

    return checked


def _val_fraction(name: str, value: Any) -> None:
    if not _real(value) or not 0 <= value <= MAX_VAL_FRACTION:
        raise _fail(
            name,
            value,
            f"in [0, {MAX_VAL_FRACTION}] (the share of rows held out), e.g. val_fraction=0.1",
        )


def _seed(name: str, value: Any) -> None:
    _integer(name, value, 0, f"a non-negative integer below 2**63 or None, e.g. {name}=0", True)
    if value is not None and value > MAX_SEED:
        raise _fail(name, value, "a non-negative integer below 2**63 or None")


def _device(name: str, value: Any) -> None:
    if isinstance(value, torch.device):
        return
    if not isinstance(value, str):
        raise _fail(name, value, f"a device name ({', '.join(DEVICES)})")
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        raise _fail(name, value, f"a device name ({', '.join(DEVICES)})") from None
    if device.type not in DEVICES:
        raise _fail(name, value, f"a device name ({', '.join(DEVICES)})")


def _calibrate(name: str, value: Any) -> None:
    if not isinstance(value, str) or value not in CALIBRATIONS:
        raise _fail(name, value, "one of " + ", ".join(f'"{c}"' for c in CALIBRATIONS))


def _flag(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise _fail(name, value, "true or false")


CHECKS: dict[str, Callable[[str, Any], None]] = {
    "latent_dim": _positive,
    "hidden": _hidden,
    "prior": _spec_like("prior"),
    "objective": _spec_like("objective", "pyro.infer.elbo.ELBO"),
    "likelihood": _likelihood,
    "model": _spec_like("model"),
    "init": _spec_like("initialization"),
    "calibrate": _calibrate,
    "detector_resampling": _flag,
    "input_mask_rate": _input_mask_rate,
    "continuous": _continuous,
    "kinds": _kinds,
    "missing_values": _missing_values,
    "epochs": _auto(_epochs, "a positive integer, e.g. epochs=300"),
    "batch_size": _auto(_positive, "a positive integer, e.g. batch_size=500"),
    "lr": _lr,
    "patience": _auto(
        _positive, "a positive integer or None (null in YAML), e.g. patience=20", none=True
    ),
    "val_fraction": _val_fraction,
    "seed": _seed,
    "device": _device,
    "verbose": _flag,
}


def check_params(params: Mapping[str, Any], source: str = "") -> None:
    """Validate the ``TabularVAE`` parameters in ``params`` (any subset); ``source`` (a spec
    file, ``--set``) prefixes the message."""
    for name, value in params.items():
        check = CHECKS.get(name)
        if check is None:
            continue
        try:
            check(name, value)
        except ParameterError as exc:
            raise ParameterError(f"{source}: {exc}" if source else str(exc)) from None


def check_condition(vae: Any, n: int, condition: Any) -> dict[str, torch.Tensor]:
    """Validate ``TabularVAE.sample(n, condition=...)``: a mapping from latent sites of the
    model to numeric tensors ``[n, ...]`` within each site's support; returns the tensors on
    the model's device."""
    import pyro
    from pyro import poutine

    if not isinstance(condition, Mapping):
        raise ParameterError(
            f"condition must be a mapping {{site name: values [n, ...]}}, got {type(condition).__name__}"
        )
    module = vae.model_
    with torch.random.fork_rng(), torch.no_grad(), pyro.validation_enabled(False):
        trace = poutine.trace(module.model).get_trace(None, num_rows=1)
    sites = {
        name: node
        for name, node in trace.nodes.items()
        if node["type"] == "sample" and not node["is_observed"]
    }
    unknown = [k for k in condition if k not in sites]
    if unknown:
        raise ParameterError(
            f"condition names {unknown}, which the model does not sample; its sites are "
            f"{list(sites)}"
        )
    out = {}
    for name, value in condition.items():
        node = sites[name]
        try:
            tensor = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError):
            raise ParameterError(
                f"condition[{name!r}] must be numbers (a tensor or array [n, ...]), got "
                f"{type(value).__name__}"
            ) from None
        if not (tensor.is_floating_point() or tensor.dtype in (torch.int32, torch.int64)):
            raise ParameterError(f"condition[{name!r}] must be numbers, got dtype {tensor.dtype}")
        if tensor.shape[:1] != (n,):
            raise ParameterError(f"condition: the values of {[name]} must have n = {n} rows")
        expected = tuple(node["value"].shape[1:])
        if tuple(tensor.shape[1:]) != expected:
            raise ParameterError(
                f"condition[{name!r}] must have shape [n, {', '.join(map(str, expected))}], got "
                f"{list(tensor.shape)}"
            )
        tensor = tensor.to(device=node["value"].device, dtype=node["value"].dtype)
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ParameterError(f"condition[{name!r}] holds NaN or inf values")
        bad = False
        try:
            bad = not bool(node["fn"].support.check(tensor).all())
        except NotImplementedError:
            pass
        if name == "x_cat":
            cards = torch.as_tensor(vae.layout_.cat_cardinalities, device=tensor.device)
            bad = bad or bool(((tensor < 0) | (tensor >= cards)).any())
        if name == "x_miss":
            bad = bad or bool(((tensor != 0) & (tensor != 1)).any())
        if bad:
            raise ParameterError(
                f"condition[{name!r}] holds values outside what the site can take (e.g. a "
                "category code beyond the column's levels); pass values the model can sample"
            )
        out[name] = tensor.to(vae.model_device)
    return out
