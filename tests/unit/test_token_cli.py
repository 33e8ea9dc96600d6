"""`strongroom token --add-to`: a principal appended to a copy of the config, or one line saying why not."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from strongroom.server.cli import main
from strongroom.server.guard.auth import token_digest
from strongroom.server.settings import load_settings

BASE = '[[sources]]\nname = "docs"\nconnector = "filesystem"\npath = "docs"\n'


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    path = tmp_path / "http.toml"
    path.write_text(BASE)
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_the_principal_is_appended_and_only_the_token_printed(config: Path) -> None:
    code, out, _ = run("token", "--add-to", str(config), "--principal", "ann", "--labels", "staff")
    assert code == 0
    token = out.strip()
    assert token.startswith("sr_") and "\n" not in token
    (ann,) = load_settings(config).guard.principals
    assert ann.name == "ann" and ann.labels == ["staff"]
    assert ann.token_sha256 == [token_digest(token)]
    assert token not in config.read_text(), "only the digest is kept"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), "--add-to needs --principal NAME"),
        (("--principal", "has space"), "the principal"),
    ],
)
def test_a_bad_request_is_one_line_and_changes_nothing(
    config: Path, args: tuple[str, ...], expected: str
) -> None:
    code, out, err = run("token", "--add-to", str(config), *args)
    assert code != 0 and out == ""
    assert err.startswith("strongroom: error:") and expected in err, err
    assert config.read_text() == BASE


def test_a_principal_declared_already_is_refused(config: Path) -> None:
    assert run("token", "--add-to", str(config), "--principal", "ann")[0] == 0
    before = config.read_text()
    code, _, err = run("token", "--add-to", str(config), "--principal", "ann")
    assert code != 0 and "principal 'ann' is already declared" in err
    assert len(err.strip().splitlines()) == 1
    assert config.read_text() == before


def test_a_missing_config_is_named(tmp_path: Path) -> None:
    code, _, err = run("token", "--add-to", str(tmp_path / "nowhere.toml"), "--principal", "ann")
    assert code != 0 and "nowhere.toml" in err and "Traceback" not in err
