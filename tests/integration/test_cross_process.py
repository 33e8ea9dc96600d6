"""A running server sees what a `strongroom sync` in another process wrote (embedded Chroma)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from strongroom.server.app import build_app
from strongroom.server.retrieval.candidates import dense_candidates
from strongroom.server.settings import load_settings
from strongroom.server.store.records import SearchFilter
from tests.support import clean_env, strongroom_cmd

pytestmark = pytest.mark.model


def test_server_process_follows_a_sync_from_another_process(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "kayaks.md").write_text("# Kayak storage\n\nKayaks are stored upside down on padded racks.")
    (docs / "stoves.md").write_text("# Camp stoves\n\nCanister stoves must be tested outdoors before sale.")
    (tmp_path / "strongroom.toml").write_text(
        "[[sources]]\nname = 'n'\nconnector = 'filesystem'\npath = 'docs'\n"
    )
    kb = build_app(load_settings(tmp_path / "strongroom.toml"), embedder=embedder).knowledge  # the "server"
    assert kb.sync().ok
    assert kb.search("where do boats go when not in use?", k=1).results[0].document_id == "n/kayaks.md"

    (docs / "stoves.md").unlink()
    (docs / "bikes.md").write_text(
        "# Bicycle tune-ups\n\nEvery rental bicycle gets a brake and chain check weekly."
    )
    out = subprocess.run(
        strongroom_cmd("sync"), cwd=tmp_path, capture_output=True, text=True, env=clean_env(), timeout=300
    )
    assert "1 added, 0 updated, 1 unchanged, 1 deleted" in out.stdout, out.stderr

    hits = kb.search("how often are the two-wheelers serviced?", k=3).results  # reloads the vectors
    assert hits[0].document_id == "n/bikes.md"
    dense = dense_candidates(
        kb.vectors, kb.embedder, "how often are the two-wheelers serviced?", 5, SearchFilter()
    )
    dense_docs = {cid.split("#")[0] for cid, _ in dense}
    assert "n/bikes.md" in dense_docs  # found by meaning, not only by keywords
    assert "n/stoves.md" not in dense_docs  # and the deleted document's vectors are gone
