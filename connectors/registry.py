"""Discovery of connectors through the ``strongroom.connectors`` entry-point group."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from strongroom.connectors.api import Config, Connector, ConnectorError

GROUP = "strongroom.connectors"


@dataclass(frozen=True)
class InstalledConnector:
    """One entry point: the class when it loads, or the reason it does not."""

    name: str
    package: str
    version: str
    cls: type[Connector] | None
    error: str | None


def _describe(ep: EntryPoint) -> InstalledConnector:
    dist = ep.dist
    package = dist.metadata["Name"] if dist is not None else "?"
    version = dist.version if dist is not None else "?"
    try:
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, Connector)):
            raise TypeError(f"{ep.value} is not a Connector subclass")
        if not (isinstance(getattr(cls, "Config", None), type) and issubclass(cls.Config, Config)):
            raise TypeError(f"{ep.value}.Config is not a strongroom.connectors.Config subclass")
    except Exception as exc:  # a broken plug-in must not stop the others
        return InstalledConnector(ep.name, package, version, None, f"{type(exc).__name__}: {exc}")
    return InstalledConnector(ep.name, package, version, cls, None)


def installed_connectors() -> list[InstalledConnector]:
    """Every registered connector, broken ones included (with their error)."""
    seen: dict[str, InstalledConnector] = {}
    for ep in entry_points(group=GROUP):
        seen.setdefault(ep.name, _describe(ep))
    return sorted(seen.values(), key=lambda c: c.name)


def connector_class(name: str) -> type[Connector]:
    """The connector registered under ``name``; ConnectorError says why if it cannot be used."""
    for installed in installed_connectors():
        if installed.name == name:
            if installed.cls is None:
                raise ConnectorError(f"connector {name!r} is broken: {installed.error}")
            return installed.cls
    known = ", ".join(c.name for c in installed_connectors()) or "none"
    raise ConnectorError(f"unknown connector {name!r} (installed: {known})")


def build_connector(name: str, options: dict[str, Any], base_dir: Path) -> Connector:
    """Instantiate a connector from its configuration keys, naming any bad key."""
    cls = connector_class(name)
    try:
        config = cls.Config.model_validate(options, context={"base_dir": base_dir})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(config)'}: "
            f"{'unknown key' if e['type'] == 'extra_forbidden' else e['msg']}"
            for e in exc.errors()
        )
        raise ConnectorError(f"invalid settings for connector {name!r}: {problems}") from exc
    return cls(config)
