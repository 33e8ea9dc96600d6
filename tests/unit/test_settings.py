from __future__ import annotations

from pathlib import Path

import pytest

from strongroom.server.settings import ConfigError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "strongroom.toml"
    path.write_text(text)
    return path


def test_defaults_and_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tmp_path, '[[sources]]\nname = "docs"\nconnector = "filesystem"\npath = "d"\n')
    settings = load_settings(config)
    assert settings.data_dir == tmp_path / ".strongroom"
    assert settings.embedding.model == "all-MiniLM-L6-v2"
    assert settings.sources[0].connector_options() == {"path": "d"}
    assert settings.base_dir == tmp_path


def test_environment_overrides_the_file_field_by_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path, '[store]\npath = "data"\ncollection = "mine"\n[retrieval]\nmax_k = 10\n')
    monkeypatch.setenv("STRONGROOM_STORE__PATH", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("STRONGROOM_RETRIEVAL__DEFAULT_K", "3")
    settings = load_settings(config)
    assert settings.data_dir == tmp_path / "elsewhere"
    assert settings.store.collection == "mine"  # untouched keys of the section survive
    assert settings.retrieval.max_k == 10 and settings.retrieval.default_k == 3


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    config = write(tmp_path, "[store]\npaht = 'x'\n")
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    assert str(config) in str(err.value) and "store.paht: unknown key" in str(err.value)


def test_unknown_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="retreival: unknown key"):
        load_settings(write(tmp_path, "[retreival]\nmax_k = 3\n"))


def test_bad_value_names_the_source_by_name(tmp_path: Path) -> None:
    config = write(tmp_path, '[[sources]]\nname = "hr"\nconnector = "filesystem"\nlabels = "staff"\n')
    with pytest.raises(ConfigError, match=r"sources\.hr\.labels"):
        load_settings(config)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(write(tmp_path, "[store\n"))
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_settings(tmp_path / "nope.toml")


def test_duplicate_source_names(tmp_path: Path) -> None:
    text = '[[sources]]\nname = "a"\nconnector = "filesystem"\n' * 2
    with pytest.raises(ConfigError, match="duplicate source name 'a'"):
        load_settings(write(tmp_path, text))


def test_documents_shortcut_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STRONGROOM_DOCUMENTS", str(tmp_path / "docs"))
    settings = load_settings()
    (source,) = settings.all_sources()
    assert source.name == "documents" and source.connector == "filesystem"
    assert source.connector_options()["path"] == str(tmp_path / "docs")


def test_principal_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings().principal == "local"
    monkeypatch.setenv("STRONGROOM_PRINCIPAL", "alice")
    assert load_settings().principal == "alice"


def test_a_sort_window_out_of_range_names_the_key_and_its_bound(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, "[embedding]\nsort_window = 0\n"))
    message = str(err.value)
    assert "embedding.sort_window" in message and "1" in message and "\n" not in message.strip()
