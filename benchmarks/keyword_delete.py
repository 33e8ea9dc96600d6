"""What re-syncing a changed document costs in the keyword index: removing its passages.

Usage: python benchmarks/keyword_delete.py CATALOG [--documents 40]
CATALOG is a synced ``catalog.sqlite3`` (e.g. ``/work/cache/pydoc-full/index/catalog.sqlite3``
from ``pydoc_quality.py``). Two copies are made; in each, the same documents are deleted one at
a time, alternating between the copies: one with :meth:`Catalog.delete_document` (passages
removed from FTS5 by the rowid each chunk keeps), one with the statement used before (removed
by ``chunk_id``, which FTS5 cannot look up). Prints ms per document and per passage.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from strongroom.server.store.catalog import Catalog


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("catalog", type=Path)
    parser.add_argument("--documents", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        now, before = Path(tmp) / "now.sqlite3", Path(tmp) / "before.sqlite3"
        shutil.copy(args.catalog, now)
        shutil.copy(args.catalog, before)
        catalog = Catalog(now)  # migrates the copy if it predates chunks.fts_rowid
        old = sqlite3.connect(before, isolation_level=None)
        passages = old.execute("SELECT count(*) FROM chunks").fetchone()[0]
        docs = [r[0] for r in old.execute("SELECT id FROM documents ORDER BY id")]
        picked = docs[:: max(1, len(docs) // args.documents)][: args.documents]
        times: dict[str, list[float]] = {"now": [], "before": []}
        removed = 0
        for doc in picked:
            started = time.perf_counter()
            removed += len(catalog.delete_document(doc))
            times["now"].append(time.perf_counter() - started)
            started = time.perf_counter()
            old.execute("BEGIN IMMEDIATE")
            ids = [r[0] for r in old.execute("SELECT id FROM chunks WHERE document_id=?", (doc,))]
            old.executemany("DELETE FROM chunks_fts WHERE chunk_id=?", [(i,) for i in ids])
            old.execute("DELETE FROM chunks WHERE document_id=?", (doc,))
            old.execute("DELETE FROM documents WHERE id=?", (doc,))
            old.execute("COMMIT")
            times["before"].append(time.perf_counter() - started)
        catalog.close()
        old.close()
    print(
        json.dumps(
            {
                "passages": passages,
                "documents": len(picked),
                "passages_removed": removed,
                **{
                    name: {
                        "ms_per_document_p50": round(1000 * statistics.median(t), 2),
                        "ms_per_passage": round(1000 * sum(t) / removed, 3),
                    }
                    for name, t in times.items()
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
