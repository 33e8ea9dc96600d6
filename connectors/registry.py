"""Discovery of connectors through the ``strongroom.connectors`` entry-point group.

Discovery is defensive: a plug-in that fails to import, points at something that is not a
:class:`Connector`, has a ``Config`` that is not a :class:`Config` subclass, or ships unreadable
package metadata is listed as broken, with the reason, and never hides or stops the others.
Building a connector for a source loads only the entry point that source names.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import re
import sys
import types
from dataclasses import dataclass, field
from importlib.metadata import Distribution, EntryPoint, distributions, entry_points
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretBytes, SecretStr, ValidationError
from pydantic_core import PydanticUndefined, to_jsonable_python

from strongroom.connectors.api import Config, Connector, ConnectorError

GROUP = "strongroom.connectors"
HIDDEN = "**********"


@dataclass(frozen=True)
class Setting:
    """One field of a connector's Config, as ``strongroom connectors`` shows it."""

    name: str
    type: str
    required: bool
    default: Any  # JSON-compatible; None when required or unset; HIDDEN for a secret's default
    description: str
    secret: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "default": self.default,
            "description": self.description,
            "secret": self.secret,
        }


@dataclass(frozen=True)
class InstalledConnector:
    """One entry point: the class when it loads, or the reason it does not."""

    name: str
    package: str
    version: str
    cls: type[Connector] | None
    error: str | None
    target: str = ""  # the entry point's value, "module:Class"
    shadowed: tuple[str, ...] = ()  # other packages registering the same name (ignored)

    @property
    def description(self) -> str:
        if self.cls is None:
            return ""
        description = getattr(self.cls, "description", "")
        return description if isinstance(description, str) else ""

    @property
    def settings(self) -> list[Setting]:
        return [] if self.cls is None else config_settings(self.cls.Config)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "package": self.package,
            "version": self.version,
            "target": self.target,
            "description": self.description,
            "broken": self.error is not None,
            "error": self.error,
            "shadowed": list(self.shadowed),
            "settings": [s.to_json() for s in self.settings],
        }


# -- settings as users see them ------------------------------------------------------------------


def type_name(annotation: Any) -> str:
    """A readable name for a type annotation: ``list[str]``, ``Path``, ``SecretStr | None``."""
    if annotation is None or annotation is type(None):
        return "None"
    if annotation is Ellipsis:
        return "..."
    if annotation is Any:
        return "Any"
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Annotated:
        return type_name(args[0])
    if origin is Union or origin is types.UnionType:
        members = [a for a in args if a is not type(None)]
        return " | ".join([type_name(a) for a in members] + (["None"] if len(members) < len(args) else []))
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin is not None:
        name = getattr(origin, "__name__", None) or str(origin).replace("typing.", "")
        return f"{name}[{', '.join(type_name(a) for a in args)}]" if args else name
    name = getattr(annotation, "__name__", None)
    if isinstance(name, str):
        return name
    return str(annotation).replace("typing.", "")


def is_secret(annotation: Any) -> bool:
    """Whether an annotation is (or includes, as in ``SecretStr | None``) a pydantic secret type."""
    if isinstance(annotation, type) and issubclass(annotation, SecretStr | SecretBytes):
        return True
    return any(is_secret(a) for a in get_args(annotation))


def _has_content(value: Any) -> bool:
    if isinstance(value, SecretStr | SecretBytes):
        return bool(value.get_secret_value())
    if isinstance(value, str | bytes | dict | list | tuple | set | frozenset):
        return len(value) > 0
    return value is not None


def config_settings(config: type[BaseModel]) -> list[Setting]:
    """The settings of a connector's Config model: name, type, default, description, secret."""
    settings = []
    for name, info in config.model_fields.items():
        secret = is_secret(info.annotation)
        required = info.is_required()
        default: Any = None
        if not required:
            try:
                value = info.get_default(call_default_factory=True)
            except Exception:  # a factory that needs validated data, or fails: show that it computes
                value = "(computed)"
            if value is PydanticUndefined:
                value = None
            if secret and _has_content(value):
                default = HIDDEN
            else:
                try:
                    default = to_jsonable_python(value)
                except Exception:
                    default = repr(value)
        settings.append(
            Setting(
                name=name,
                type=type_name(info.annotation),
                required=required,
                default=default,
                description=info.description or "",
                secret=secret,
            )
        )
    return settings


# -- discovery ------------------------------------------------------------------------------------


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class _Found:
    ep: EntryPoint | None
    package: str
    version: str
    error: str | None = None
    shadowed: list[str] = field(default_factory=list)


def _package(dist: Distribution) -> tuple[str, str]:
    try:
        name = dist.metadata["Name"] or "?"
        version = dist.version or "?"
    except Exception:
        return "?", "?"
    return str(name), str(version)


def _discover() -> dict[str, _Found]:
    """Every entry point of the group, by name, without loading any (first on sys.path wins).

    The standard selection reads only each package's entry_points.txt (a few milliseconds);
    if one of those files is unreadable, every package is looked at on its own instead, so the
    bad one is reported and the others still found."""
    try:
        selected = entry_points(group=GROUP)
    except Exception:
        return _discover_one_by_one()
    found: dict[str, _Found] = {}
    for ep in selected:
        package, version = _package(ep.dist) if ep.dist is not None else ("?", "?")
        if ep.name in found:
            found[ep.name].shadowed.append(package)
        else:
            found[ep.name] = _Found(ep, package, version)
    return found


def _discover_one_by_one() -> dict[str, _Found]:
    """:func:`_discover` for an environment with unreadable package metadata."""
    found: dict[str, _Found] = {}
    seen_packages: set[str] = set()
    for dist in distributions():
        package, version = _package(dist)
        key = _normalise(package)
        if key in seen_packages and package != "?":
            continue  # an earlier copy on sys.path takes precedence, as in importlib.metadata
        seen_packages.add(key)
        try:
            eps = [ep for ep in dist.entry_points if ep.group == GROUP]
        except Exception as exc:  # unreadable entry_points.txt: report it if it concerns us
            with contextlib.suppress(Exception):
                if GROUP in (dist.read_text("entry_points.txt") or ""):
                    found.setdefault(
                        package,
                        _Found(None, package, version, f"cannot read the package's entry points: {exc}"),
                    )
            continue
        for ep in eps:
            if ep.name in found:
                found[ep.name].shadowed.append(package)
            else:
                found[ep.name] = _Found(ep, package, version)
    return found


@functools.cache
def _listed() -> dict[str, _Found]:
    return _discover()


def _check(obj: Any, target: str) -> type[Connector]:
    if not (isinstance(obj, type) and issubclass(obj, Connector)):
        raise TypeError(f"{target} is not a strongroom.connectors.Connector subclass")
    config = getattr(obj, "Config", None)
    if not (isinstance(config, type) and issubclass(config, Config)):
        raise TypeError(f"{target}.Config is not a strongroom.connectors.Config subclass")
    if inspect.isabstract(obj):
        missing = ", ".join(sorted(getattr(obj, "__abstractmethods__", ())))
        raise TypeError(f"{target} is abstract (does not implement {missing})")
    return obj


def _load(name: str, found: _Found) -> InstalledConnector:
    ep = found.ep
    shadowed = tuple(found.shadowed)
    if ep is None:
        return InstalledConnector(name, found.package, found.version, None, found.error, "", shadowed)
    try:
        # A plug-in's import-time output must never reach stdout (the MCP stdio channel).
        with contextlib.redirect_stdout(sys.stderr):
            cls = _check(ep.load(), ep.value)
    except (Exception, SystemExit) as exc:  # a broken plug-in must not stop the others
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return InstalledConnector(name, found.package, found.version, None, error, ep.value, shadowed)
    return InstalledConnector(name, found.package, found.version, cls, None, ep.value, shadowed)


def installed_connectors() -> list[InstalledConnector]:
    """Every registered connector, broken ones included (with their error)."""
    return [_load(name, found) for name, found in sorted(_discover().items())]


def connector_class(name: str) -> type[Connector]:
    """The connector registered under ``name``; ConnectorError says why if it cannot be used.

    Only that entry point is loaded: a broken plug-in does not affect sources that do not use it.
    The entry points are listed once per process and again for a name not found.
    """
    found = _listed()
    if name not in found:
        _listed.cache_clear()  # installed since
        found = _listed()
    if name not in found or found[name].ep is None:
        known = ", ".join(sorted(n for n, f in found.items() if f.ep is not None)) or "none"
        raise ConnectorError(f"unknown connector {name!r} (installed: {known})")
    installed = _load(name, found[name])
    if installed.cls is None:
        raise ConnectorError(
            f"connector {name!r} (package {installed.package} {installed.version}) is broken: {installed.error}"
        )
    return installed.cls


def configure(
    cls: type[Connector], options: dict[str, Any], base_dir: Path | None, name: str | None = None
) -> Connector:
    """Validate ``options`` with the connector's Config and instantiate it, naming any bad key.

    ``base_dir`` resolves relative paths (the configuration file's folder); ``name`` is the
    connector's name in messages (default: the class's ``name``).
    """
    label = name or getattr(cls, "name", cls.__name__)
    try:
        config = cls.Config.model_validate(options, context={"base_dir": base_dir})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(config)'}: "
            f"{'unknown key' if e['type'] == 'extra_forbidden' else e['msg']}"
            for e in exc.errors()
        )
        raise ConnectorError(f"invalid settings for connector {label!r}: {problems}") from exc
    return cls(config)


def build_connector(name: str, options: dict[str, Any], base_dir: Path) -> Connector:
    """Instantiate the connector registered as ``name`` from a source's keys, naming any bad key."""
    return configure(connector_class(name), options, base_dir, name)
