"""Name -> factory registries for ppvae's extension points.

Each extension point (priors, objectives, likelihoods, models) owns one :class:`Registry`,
filled by a decorator in the style of Pyro's ``@register_kl``::

    @priors.register("my_prior")
    class MyPrior(Prior): ...

A registry turns a declarative spec into an object with :meth:`Registry.build`: the spec
may be a registered name (``"vamp"``), a dict with a ``name`` key and keyword arguments
(``{"name": "vamp", "components": 64}``) or an instance, which passes through unchanged, or
as a deep copy for a registry made with ``clone_instances=True`` (objectives: a fit never
changes the instance it was given). ``adapt`` turns a foreign object into an instance first
(the objectives registry wraps any ``pyro.infer.ELBO``).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class SpecError(ValueError):
    """A declarative spec names something unknown or passes arguments it does not take."""


class Registry(Generic[T]):
    """A mapping from names to factories (classes or functions) of one extension point."""

    def __init__(
        self,
        kind: str,
        base: type | None = None,
        *,
        adapt: Callable[[Any], Any] | None = None,
        clone_instances: bool = False,
    ):
        self.kind = kind
        self.base = base
        self.adapt = adapt
        self.clone_instances = clone_instances
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering ``factory`` under ``name`` (re-registering replaces it)."""
        if not isinstance(name, str) or not name:
            raise SpecError(f"a {self.kind} must be registered under a non-empty string name")

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            self._factories[name] = factory
            if isinstance(factory, type):
                factory.registry_name = name
            return factory

        return decorator

    def names(self) -> list[str]:
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def get(self, name: str) -> Callable[..., T]:
        try:
            return self._factories[name]
        except KeyError:
            raise SpecError(
                f"unknown {self.kind} {name!r}; registered {self.kind}s are: "
                f"{', '.join(self.names())}. Register your own with "
                f"@ppvae.{self.kind}s.register(name)."
            ) from None

    def build(self, spec: str | Mapping[str, Any] | T, **context: Any) -> T:
        """Build an object from a name, a ``{"name": ..., **kwargs}`` dict, or an instance.

        ``context`` holds keyword arguments that the caller supplies (e.g. ``latent_dim``);
        they are passed only to factories whose signature accepts them.
        """
        if self.adapt is not None:
            spec = self.adapt(spec)
        if self.base is not None and isinstance(spec, self.base):
            return copy.deepcopy(spec) if self.clone_instances else spec
        if isinstance(spec, str):
            name, kwargs = spec, {}
        elif isinstance(spec, Mapping):
            if "name" not in spec:
                raise SpecError(
                    f"a {self.kind} spec dict needs a 'name' key (one of {', '.join(self.names())}); "
                    f"got keys {sorted(spec)}"
                )
            kwargs = {k: v for k, v in spec.items() if k != "name"}
            name = spec["name"]
        else:
            raise SpecError(
                f"a {self.kind} must be given as a name, a dict with 'name', or an instance; "
                f"got {type(spec).__name__}"
            )
        factory = self.get(name)

        params = inspect.signature(factory).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        for key, value in context.items():
            if (takes_any or key in params) and key not in kwargs:
                kwargs[key] = value
        unknown = [k for k in kwargs if not takes_any and k not in params]
        if unknown:
            allowed = [p for p in params if p not in ("self",) and p not in context]
            raise SpecError(
                f"{self.kind} {name!r} does not take option(s) {', '.join(map(repr, unknown))}; "
                f"it takes: {', '.join(allowed) or 'no options'}"
            )
        try:
            return factory(**kwargs)
        except TypeError as exc:  # wrong option types, missing required options
            raise SpecError(
                f"could not build {self.kind} {name!r} from {dict(kwargs)}: {exc}"
            ) from exc
