"""Connector discovery over real package metadata: dist-info folders put first on sys.path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.connectors import registry
from strongroom.connectors.api import ConnectorError


def dist_info(site: Path, name: str, version: str, entry_points: str) -> None:
    folder = site / f"{name.replace('-', '_')}-{version}.dist-info"
    folder.mkdir(parents=True)
    (folder / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (folder / "entry_points.txt").write_text(entry_points)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    registry._listed.cache_clear()
    yield tmp_path
    registry._listed.cache_clear()


def test_a_second_package_with_the_same_name_is_reported_as_shadowed(site: Path) -> None:
    dist_info(site, "acme-files", "1.0", '[strongroom.connectors]\nfilesystem = "acme:Files"\n')
    found = registry._discover()
    assert found["filesystem"].package == "acme-files" and found["filesystem"].version == "1.0"
    assert found["filesystem"].shadowed == ["strongroom"]  # the built-in, later on the path
    assert found["web"].package == "strongroom"


def test_an_unreadable_entry_points_file_is_reported_and_hides_nothing(site: Path) -> None:
    dist_info(site, "half-written", "0.1", "[strongroom.connectors]\nthis line has no equals sign\n")
    found = registry._discover()
    assert found["half-written"].ep is None
    assert (found["half-written"].error or "").startswith("cannot read the package's entry points")
    assert {"filesystem", "records", "sql", "web"} <= {n for n, f in found.items() if f.ep is not None}
    with pytest.raises(ConnectorError, match=r"unknown connector 'half-written' \(installed: filesystem"):
        registry.connector_class("half-written")


def test_a_broken_package_elsewhere_in_the_environment_is_not_listed(site: Path) -> None:
    dist_info(site, "unrelated", "2.0", "[console_scripts]\nthis line has no equals sign\n")
    found = registry._discover()
    assert set(found) == {"filesystem", "records", "sql", "web"}
