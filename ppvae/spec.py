"""Declarative model specs: YAML files (or dicts) holding ``TabularVAE`` constructor arguments.

A spec is resolved in this order: a dict is used as is; a path to an existing file is read;
otherwise the name (with or without ``.yaml``) is looked up among the specs shipped with the
package (the repository's ``models/`` folder, installed as ``ppvae/specs``), so
``TabularVAE.from_spec("vamp")`` works from any directory.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ppvae.params import check_params
from ppvae.registry import SpecError

SPECS_DIR = Path(__file__).resolve().parent / "specs"
MAX_SPEC_BYTES = 1_000_000
MAX_SPEC_NODES = 10_000  # values a spec may hold once YAML aliases are expanded


def safe_yaml(text: str, source: str) -> Any:
    """Parse YAML with the safe loader, refusing text that expands (through anchors and
    aliases, the "billion laughs") to more than ``MAX_SPEC_NODES`` values."""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(f"{source} is {len(text)} characters; a spec is at most {MAX_SPEC_BYTES}")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        sizes: dict[int, int] = {}

        def size(n: yaml.Node) -> int:
            if id(n) not in sizes:
                sizes[id(n)] = 0  # a recursive alias counts once
                if isinstance(n, yaml.MappingNode):
                    total = 1 + sum(size(k) + size(v) for k, v in n.value)
                elif isinstance(n, yaml.SequenceNode):
                    total = 1 + sum(size(v) for v in n.value)
                else:
                    total = 1
                sizes[id(n)] = min(total, MAX_SPEC_NODES + 1)
            return sizes[id(n)]

        if size(node) > MAX_SPEC_NODES:
            raise SpecError(
                f"{source} expands to more than {MAX_SPEC_NODES} values through YAML anchors "
                "and aliases; a spec holds a few options: write them out without aliases"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def shipped_specs() -> list[str]:
    """Names of the specs shipped with ppvae (``default``, ``vamp``, ...)."""
    return sorted(p.stem for p in SPECS_DIR.glob("*.yaml"))


def resolve_spec_path(spec: str | os.PathLike) -> Path:
    """The file a spec path or shipped-spec name refers to."""
    path = Path(spec)
    if path.is_file():
        return path
    name = path.name[:-5] if path.name.endswith((".yaml", ".yml")) else path.name
    shipped = SPECS_DIR / f"{name}.yaml"
    if shipped.is_file():
        return shipped
    raise SpecError(
        f"no spec file {str(spec)!r} and no shipped spec named {name!r}; shipped specs are: "
        f"{', '.join(shipped_specs())}"
    )


def load_spec(
    spec: str | os.PathLike | Mapping[str, Any], options: Sequence[str] | None = None
) -> dict[str, Any]:
    """A dict of ``TabularVAE`` arguments from a spec file, name or dict; its keys are
    checked against ``options`` (e.g. ``TabularVAE.option_names()``) when given."""
    if isinstance(spec, Mapping):
        data, source = dict(spec), "spec dict"
    else:
        path = resolve_spec_path(spec)
        source = str(path)
        try:
            data = safe_yaml(path.read_text(encoding="utf-8"), f"spec {source}")
        except (yaml.YAMLError, RecursionError, UnicodeDecodeError) as exc:
            raise SpecError(f"spec {source} is not valid YAML: {exc}") from None
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise SpecError(
                f"spec {source} must be a mapping of TabularVAE arguments, got {type(data).__name__}"
            )
        data = dict(data)
    if options is not None:
        check_spec_keys(data, source, options)
    if "hidden" in data and isinstance(data["hidden"], list):
        data["hidden"] = tuple(data["hidden"])
    check_params(data, source)
    return data


def check_spec_keys(data: Mapping[str, Any], source: str, options: Sequence[str]) -> None:
    """Raise a :class:`SpecError` naming the closest option for a key not in ``options``."""
    allowed = list(options)
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise SpecError(
                f"{source}: unknown option {key!r}{hint} Options are: {', '.join(allowed)}"
            )


def dump_spec(params: Mapping[str, Any]) -> str:
    """YAML text of a spec (tuples become lists)."""
    return yaml.safe_dump(_plain(dict(params)), sort_keys=False)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "config") and callable(value.config):  # a Prior / Objective instance
        return _plain(value.config())
    return value
