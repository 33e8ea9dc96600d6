"""Example data shipped with Strongroom: `strongroom example DIR` writes ``acme/`` into DIR."""
