"""The shared catalog's settings and first-connection errors: one clear line, never a password."""

from __future__ import annotations

from pathlib import Path

import pytest

from strongroom.server.app import build_app
from strongroom.server.errors import StoreUnavailable
from strongroom.server.settings import ConfigError, load_settings
from tests.support import free_port


def config(tmp_path: Path, store: str) -> Path:
    path = tmp_path / "strongroom.toml"
    path.write_text(f"[store]\n{store}\n")
    return path


def test_a_password_in_the_url_is_refused_without_repeating_it(tmp_path: Path) -> None:
    path = config(
        tmp_path, 'catalog_url = "postgresql://app:hunter2@db:5432/s"\nchroma_url = "http://v:8000"'
    )
    with pytest.raises(ConfigError) as refused:
        load_settings(path)
    assert "must not hold the password" in str(refused.value) and "hunter2" not in str(refused.value)


def test_a_shared_catalog_needs_a_chroma_server(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="catalog_url needs chroma_url"):
        load_settings(config(tmp_path, 'catalog_url = "postgresql://app@db:5432/s"'))


def test_an_unreachable_database_is_one_line_naming_the_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"postgresql://app@127.0.0.1:{free_port()}/s"
    monkeypatch.setenv("STRONGROOM_STORE__CATALOG_PASSWORD", "hunter2")
    settings = load_settings(config(tmp_path, f'catalog_url = "{url}"\nchroma_url = "http://127.0.0.1:9"'))
    with pytest.raises(StoreUnavailable) as failed:
        _ = build_app(settings).catalog
    message = str(failed.value)
    assert "Connection refused" in message and "\n" not in message and "hunter2" not in message
    assert "hunter2" not in (failed.value.where or "")


def test_an_unreadable_password_file_says_which(tmp_path: Path) -> None:
    settings = load_settings(
        config(
            tmp_path,
            'catalog_url = "postgresql://app@db/s"\nchroma_url = "http://v"\ncatalog_password_file = "missing"',
        )
    )
    with pytest.raises(StoreUnavailable, match=r"catalog_password_file .*missing cannot be read"):
        _ = build_app(settings).catalog
