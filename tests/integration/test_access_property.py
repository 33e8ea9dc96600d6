"""Property: whatever labels documents and principals carry, no result ever escapes access control."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.connectors.api import Document
from strongroom.server.app import build_app
from strongroom.server.errors import InvalidArgument, NotFound
from strongroom.server.guard.access import Access
from strongroom.server.settings import load_settings

pytestmark = pytest.mark.model

LABELS = ["hr", "finance", "legal", "ops"]
SOURCES = ["s0", "s1", "s2", "s3"]
label_sets = st.lists(st.sampled_from(LABELS), unique=True, max_size=2)


def corpus(source: str) -> list[Document]:
    return [
        Document(
            id=f"d{i}.md",
            title=f"{source} memo {i}",
            metadata={"format": "md"},
            text=f"# Memo {i}\n\nQuarterly budget memo {i} from {source}: code {source}x{i}. "
            "Travel, payroll and contract renewals are summarised here.",
        )
        for i in range(3)
    ]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    source_labels=st.lists(label_sets, min_size=len(SOURCES), max_size=len(SOURCES)),
    principal_labels=st.lists(st.one_of(label_sets, st.just(["*"])), min_size=1, max_size=3),
)
def test_no_result_escapes(tmp_path_factory, embedder, source_labels, principal_labels) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("prop")
    toml = "".join(
        f'[[sources]]\nname = "{name}"\nconnector = "filesystem"\npath = "docs"\nlabels = {labels!r}\n'.replace(
            "'", '"'
        )
        for name, labels in zip(SOURCES, source_labels, strict=True)
    )
    (root / "strongroom.toml").write_text(toml)
    kb = build_app(load_settings(root / "strongroom.toml"), embedder=embedder).knowledge
    for name in SOURCES:
        kb.indexer.plant(name, corpus(name))
    labels_of = dict(zip(SOURCES, source_labels, strict=True))

    for labels in principal_labels:
        access = Access.of(labels)
        visible = {s for s in SOURCES if access.can_see(labels_of[s])}
        hits = kb.search("quarterly budget memo travel payroll", k=20, access=access).results
        hits += kb.search(
            "s1x2 contract renewals", k=20, filters={"format": ["md", "x"]}, access=access
        ).results
        assert {h.source for h in hits} <= visible, (labels, labels_of)
        # Completeness: everything visible is still findable.
        found = {h.source for h in kb.search("quarterly budget memo", k=20, access=access).results}
        assert found == visible or len(visible) * 3 > 20
        assert {s.name for s in kb.list_sources(access).sources} == visible
        for name in SOURCES:
            if name in visible:
                assert kb.read_document(f"{name}/d0.md", access=access).text
            else:
                with pytest.raises(NotFound):
                    kb.read_document(f"{name}/d0.md", access=access)
                with pytest.raises(InvalidArgument, match="unknown source"):
                    kb.search("memo", sources=[name], access=access)
    kb.close()
