"""Generated manuals' page chrome (Sphinx, DocBook) is dropped by structure; the content stays."""

from __future__ import annotations

from strongroom.connectors.filesystem.formats.html import parse

SPHINX = b"""<html><head><title>os.path - Python docs</title></head><body>
<div class="related" role="navigation"><ul><li><a href="index.html">index</a></li><li>next |</li></ul></div>
<div class="document"><div class="documentwrapper"><div class="bodywrapper"><div class="body" role="main">
<h1>os.path<a class="headerlink" href="#x">\xc2\xb6</a></h1><p>Common pathname manipulations.</p>
<dl><dt>os.path.join(path, *paths)</dt><dd><p>Join one or more path segments.</p></dd></dl>
</div></div></div>
<div class="sphinxsidebar" role="navigation"><h3>Table of Contents</h3><ul><li>Previous topic</li></ul></div></div>
<div class="footer">Copyright 2001-2023, Python Software Foundation.</div></body></html>"""

DOCBOOK = b"""<html><head><title>max_wal_size</title></head><body>
<div class="navheader"><table><tr><td>Prev</td><td>Up</td><td>Home</td><td>Next</td></tr></table></div>
<div class="sect1"><div class="toc"><dl><dt>19.5.1. Settings</dt></dl></div>
<h2>19.5. Write Ahead Log</h2><p>max_wal_size sets the WAL size that triggers a checkpoint.</p></div>
<div class="navfooter"><table><tr><td>Prev</td><td>Home</td><td>Next</td></tr></table></div></body></html>"""


def test_sphinx_sidebar_related_links_footer_and_permalinks_are_dropped() -> None:
    text = parse(SPHINX).text
    assert text.startswith("# os.path\n\nCommon pathname manipulations.")
    assert "os.path.join(path, *paths)" in text and "Join one or more path segments." in text
    for chrome in ("index", "next |", "Table of Contents", "Previous topic", "Copyright", "\xb6"):
        assert chrome not in text, chrome


def test_docbook_navheader_navfooter_and_toc_are_dropped() -> None:
    text = parse(DOCBOOK).text
    assert text == "## 19.5. Write Ahead Log\n\nmax_wal_size sets the WAL size that triggers a checkpoint."


def test_a_page_without_structure_keeps_its_body() -> None:
    assert parse(b"<p>Plain page.</p><nav>menu</nav>").text == "Plain page."
