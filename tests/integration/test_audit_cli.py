"""The audit log through the real CLI: verify, external anchors, and no false alarm after a crash."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import anyio
import pytest

from strongroom.server.app import build_app
from strongroom.server.guard.access import Access, Caller
from strongroom.server.settings import load_settings
from strongroom.server.store.audit import AuditLog
from tests.support import ROOT, StdioPeer, clean_env, strongroom_cmd

# Appends as fast as it can until it is killed; "ready" once the first record is in.
APPENDER = """
import sys
from collections.abc import Mapping
from pathlib import Path
from strongroom.server.store.audit import AuditLog
log = AuditLog(Path(sys.argv[1]))
log.append("p", "search", "h", "ok", ["c-0"], ["d"])
print("ready", flush=True)
while True:
    log.append("p", "search", "h", "ok", ["c-0", "c-1"], ["d"])
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "strongroom.toml"
    path.write_text('[store]\npath = "data"\n')
    return path


def catalog(config: Path) -> Path:
    return config.parent / "data" / "catalog.sqlite3"


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        strongroom_cmd(*args, "--config", str(config)),
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )


def sql(config: Path, *statements: str) -> None:
    with sqlite3.connect(catalog(config)) as db:
        for statement in statements:
            db.execute(statement)


def delete_head(config: Path) -> None:
    """Remove the head wherever it is kept (the old file beside the catalog, the head table)."""
    (catalog(config).parent / "audit.head").unlink(missing_ok=True)
    with sqlite3.connect(catalog(config)) as db:
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'audit_head'").fetchone():
            db.execute("DELETE FROM audit_head")


def test_head_prints_an_anchor_that_verify_checks(config: Path) -> None:
    empty = cli(config, "audit", "verify")
    assert empty.returncode == 0 and empty.stdout.startswith("ok: 0 records"), empty.stderr
    log = AuditLog(catalog(config))
    for n in range(3):
        log.append("alice", "search", f"h{n}", "ok")
    head = cli(config, "audit", "head")
    anchor = head.stdout.strip()
    assert head.returncode == 0 and re.fullmatch(r"3:[0-9a-f]{64}", anchor), head.stderr
    log.append("bob", "search", "h3", "ok")

    good = cli(config, "audit", "verify", "--head", anchor)
    assert good.returncode == 0 and f"contains anchor {anchor}" in good.stdout, good.stderr
    forged = cli(config, "audit", "verify", "--head", "3:" + "f" * 64)
    assert forged.returncode == 1 and forged.stderr == (
        "strongroom: error: audit log is not intact: record 3 is not the anchored one: the log was rewritten\n"
    )
    bad = cli(config, "audit", "verify", "--head", "3")
    assert bad.returncode != 0 and len(bad.stderr.splitlines()) == 1 and "SEQ:HASH" in bad.stderr


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        ("edit", "record 2 was altered"),
        ("reorder", "record 2 does not follow record 1"),
        ("truncate-and-append", "record 1 is missing"),
        ("delete-head", "the audit head is missing"),
    ],
)
def test_verify_detects_tampering(config: Path, tamper: str, problem: str) -> None:
    log = AuditLog(catalog(config))
    for n in range(3):
        log.append("alice", "search", f"h{n}", "ok")
    if tamper == "edit":
        sql(config, "UPDATE audit SET principal = 'eve' WHERE seq = 2")
    elif tamper == "reorder":
        sql(
            config,
            "UPDATE audit SET seq = -1 WHERE seq = 2",
            "UPDATE audit SET seq = 2 WHERE seq = 3",
            "UPDATE audit SET seq = 3 WHERE seq = -1",
        )
    elif tamper == "truncate-and-append":
        sql(config, "DELETE FROM audit", "DELETE FROM audit_documents")
        log.append("alice", "search", "h4", "ok")  # the server carries on
    else:
        delete_head(config)
    broken = cli(config, "audit", "verify")
    assert broken.returncode == 1 and len(broken.stderr.splitlines()) == 1, broken.stderr
    assert problem in broken.stderr
    assert cli(config, "audit", "head").returncode == 1  # no anchor is handed out for a broken log


def test_missing_head_says_what_to_do(config: Path) -> None:
    AuditLog(catalog(config)).append("alice", "search", "h0", "ok")
    delete_head(config)
    message = cli(config, "audit", "verify").stderr
    assert "audit verify --head" in message and "audit reanchor" in message
    reanchored = cli(config, "audit", "reanchor")
    assert reanchored.returncode == 0 and cli(config, "audit", "verify").returncode == 0
    shown = cli(config, "audit", "--limit", "1").stdout
    assert "operator audit.reanchor ok" in shown  # the repair is itself on the record


def test_sigkill_during_appends_never_raises_a_false_alarm(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite3"
    AuditLog(path)
    rng = random.Random(7)
    result = None
    for round_ in range(6):
        writers = [
            subprocess.Popen(
                [sys.executable, "-c", APPENDER, str(path)], stdout=subprocess.PIPE, env=clean_env(), cwd=ROOT
            )
            for _ in range(2)
        ]
        for writer in writers:
            assert writer.stdout is not None and writer.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.0, 0.08))
        for writer in writers:
            writer.send_signal(signal.SIGKILL)
        for writer in writers:
            writer.wait(10)
            assert writer.stdout is not None
            writer.stdout.close()
        result = AuditLog(path).verify()
        assert result.ok, f"round {round_}: {result.problem}"
    assert result is not None and result.records > 12


def guarded_call(config: Path, arguments: Mapping[str, object]) -> str:
    """Run one call through the guard built as `serve` builds it; the recorded argument digest."""
    settings = load_settings(config)

    async def call(access: Access) -> str:
        return "done"

    anyio.run(build_app(settings).guard.run, Caller("local", "stdio"), "search", arguments, call)
    return AuditLog(settings.catalog_path).query(limit=1)[0].args_hash


def test_argument_digests_are_keyed_outside_the_catalog(config: Path) -> None:
    arguments = {"query": "ORD-1042", "k": 5}
    blob = json.dumps(arguments, sort_keys=True).encode()
    digest = guarded_call(config, arguments)
    assert digest != hashlib.sha256(blob).hexdigest()  # not recoverable by hashing guesses
    key_file = catalog(config).parent / "audit.key"  # beside the catalog, not in it
    if os.name == "posix":
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert digest == hmac.new(key_file.read_bytes().strip(), blob, hashlib.sha256).hexdigest()
    assert guarded_call(config, arguments) == digest  # the same key on the next start

    # "Did local ask for ORD-1042?": the operator recomputes the digest and looks for it.
    recomputed = cli(config, "audit", "digest", "--args", json.dumps(arguments))
    assert recomputed.returncode == 0 and recomputed.stdout.strip() == digest
    bad = cli(config, "audit", "digest", "--args", "{query")
    assert bad.returncode != 0 and len(bad.stderr.splitlines()) == 1 and "JSON object" in bad.stderr


def test_digest_key_from_the_environment_or_another_file(config: Path, tmp_path: Path) -> None:
    arguments = {"query": "refund"}
    blob = json.dumps(arguments, sort_keys=True).encode()
    env = clean_env(STRONGROOM_GUARD__DIGEST_KEY="an operator-supplied key of some length")
    shown = subprocess.run(
        strongroom_cmd("audit", "digest", "--args", json.dumps(arguments), "--config", str(config)),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    expected = hmac.new(b"an operator-supplied key of some length", blob, hashlib.sha256).hexdigest()
    assert shown.returncode == 0 and shown.stdout.strip() == expected
    assert "operator-supplied" not in shown.stdout + shown.stderr
    assert not (catalog(config).parent / "audit.key").exists()

    config.write_text('[store]\npath = "data"\n[guard]\ndigest_key_file = "secrets/digest.key"\n')
    digest = guarded_call(config, arguments)
    key = (tmp_path / "secrets" / "digest.key").read_bytes().strip()
    assert digest == hmac.new(key, blob, hashlib.sha256).hexdigest()


def test_audit_budget_and_canary_output_escape_control_characters(config: Path) -> None:
    forged = "handbook/a.md\n#99 2024-01-01T00:00:00 alice search ok"
    log = AuditLog(catalog(config))
    log.append("mallory\x1b[2K", "search", "h0", "ok", ["c"], [forged, "b\u202eevil.md"])
    shown = cli(config, "audit")
    assert shown.returncode == 0 and len(shown.stdout.splitlines()) == 1, shown.stdout
    assert "handbook/a.md\\n#99" in shown.stdout and "mallory\\x1b[2K" in shown.stdout
    assert "b\\u202eevil.md" in shown.stdout and "\x1b" not in shown.stdout and "\u202e" not in shown.stdout
    exported = cli(config, "audit", "--jsonl").stdout.splitlines()
    assert len(exported) == 1 and json.loads(exported[0])["document_ids"][1] == forged  # JSON stays exact

    from strongroom.server.models import Served
    from strongroom.server.store.exposure import ExposureLedger

    ledger = ExposureLedger(catalog(config))
    ledger.record_served("eve\nbob: 0/800 passages", [Served("c", "d", "s", 1)], ledger.now(), 1, {"c": 1})
    budget = cli(config, "budget", "show").stdout
    assert "eve\\nbob" in budget and not any(line.startswith("bob:") for line in budget.splitlines())


def test_sigkill_of_a_server_in_the_middle_of_calls_never_raises_a_false_alarm(
    fresh_example: Path, tmp_path: Path
) -> None:
    """`strongroom serve` killed while calls stream in: the log it leaves verifies, and holds a
    record for every call that was answered."""
    rng = random.Random(11)
    answered = 0
    for round_ in range(3):
        peer = StdioPeer(fresh_example, tmp_path / f"serve{round_}.log")
        try:
            peer.initialize()
            for n in range(1, 40):
                peer.send(
                    {"id": n, "method": "tools/call", "params": {"name": "list_sources", "arguments": {}}}
                )
            peer.response(1)  # serving; the rest are in flight
            time.sleep(rng.uniform(0.0, 0.3))
            peer.proc.send_signal(signal.SIGKILL)
            peer.proc.wait(10)
        finally:
            if peer.proc.poll() is None:
                peer.proc.kill()
        answered += sum(1 for m in peer.lines if "result" in m and m.get("id"))
        verified = cli(fresh_example, "audit", "verify")
        assert verified.returncode == 0 and "ok" in verified.stdout.lower(), verified.stdout + verified.stderr
    records = AuditLog(fresh_example.parent / ".strongroom" / "catalog.sqlite3").query(limit=None)
    assert len([r for r in records if r.action == "list_sources"]) >= answered > 3
