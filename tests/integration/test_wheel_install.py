"""A pip user's first hour, from the built wheel, in a fresh virtual environment, outside the
repository: ``example``, ``init``, ``doctor``, ``sync``, ``search``, ``claude-config --write``.

What this proves: the wheel alone carries Strongroom (code, entry points, the example company,
the console script) and works from any folder. What it does not: that pip resolves the
dependencies from the public index. To stay fast and offline, the new environment borrows this
environment's installed dependencies through a ``.pth`` file placed after its own site-packages,
so ``strongroom`` itself is imported from the wheel installed in the new environment.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.support import ROOT, clean_env

pytestmark = pytest.mark.model


def sh(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, f"{args}: {out.stdout[-2000:]}{out.stderr[-2000:]}"
    return out.stdout


def fresh_venv_with_the_wheel(tmp_path: Path) -> Path:
    wheels = tmp_path / "wheels"
    sh(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", wheels, ROOT, cwd=tmp_path)
    (wheel,) = wheels.glob("strongroom-*.whl")
    venv = tmp_path / "venv"
    sh(getattr(sys, "_base_executable", sys.executable), "-m", "venv", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    site = Path(
        sh(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path).strip()
    )
    # Dependencies from this environment, after the new one's own site-packages (never the repo).
    borrowed = [p for p in sys.path if p.endswith("site-packages") and not p.startswith(str(ROOT))]
    borrowed.append(sysconfig.get_paths()["purelib"])
    (site / "zz_borrowed_dependencies.pth").write_text("\n".join(dict.fromkeys(borrowed)) + "\n")
    sh(python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel, cwd=tmp_path)
    return venv


def test_wheel_in_a_fresh_venv_runs_the_first_hour(tmp_path: Path) -> None:
    venv = fresh_venv_with_the_wheel(tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    home = tmp_path / "home"
    env = clean_env(PATH=f"{venv / 'bin'}:/usr/bin:/bin", HOME=str(home), XDG_CONFIG_HOME="")
    strongroom = venv / "bin" / "strongroom"

    where = sh(
        venv / "bin" / "python", "-c", "import strongroom.server as s; print(s.__file__)", cwd=work, env=env
    )
    assert where.startswith(str(venv)), where  # the wheel's copy, not the repository's

    sh(strongroom, "example", "acme", cwd=work, env=env)
    acme = work / "acme"
    synced = sh(strongroom, "sync", cwd=acme, env=env)
    assert "handbook: 12 added" in synced, synced
    hits = sh(strongroom, "search", "can I send back a tent I already pitched?", "-k", "2", cwd=acme, env=env)
    assert hits.startswith("1. Returns and Refund Policy"), hits

    project = work / "my-policies"
    (project / "docs").mkdir(parents=True)
    (project / "docs" / "leave.md").write_text("# Leave\n\nStaff get 25 days of paid leave a year.\n")
    sh(strongroom, "init", project, cwd=work, env=env)
    sh(strongroom, "sync", cwd=project, env=env)
    doctor = sh(strongroom, "doctor", cwd=project, env=env)
    assert "all checks passed" in doctor and "model: all-MiniLM-L6-v2 loads offline" in doctor, doctor
    written = sh(strongroom, "claude-config", "--write", cwd=project, env=env)
    claude_file = home / ".config" / "Claude" / "claude_desktop_config.json"
    assert str(claude_file) in written
    entry = json.loads(claude_file.read_text())["mcpServers"]["strongroom"]
    assert entry["command"] == str(venv / "bin" / "python")
    assert entry["args"][-1] == str(project / "strongroom.toml")
