"""Keeping database passwords out of messages, logs and reprs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote, urlsplit, urlunsplit

MASK = "***"
_USERINFO = re.compile(r"(?P<head>://[^/@:\s]*:)(?P<password>[^@\s]*)@")


def url_password(url: str) -> str | None:
    """The password in ``scheme://user:password@host/...`` (percent-decoded), if any."""
    try:
        password = urlsplit(url).password
    except ValueError:
        match = _USERINFO.search(url)
        return unquote(match["password"]) if match else None
    return unquote(password) if password else None


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``; user, host and database stay readable."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        userinfo, _, hostinfo = parts.netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{hostinfo}"))
    except ValueError:
        return _USERINFO.sub(lambda m: f"{m['head']}{MASK}@", url)


class Redactor:
    """Replaces every known secret, in the forms it may appear in (raw, percent-encoded), by ``***``."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret:
                forms |= {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}
        # Longest first, so a secret's encoded form is not half-replaced by the raw one.
        self._forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            text = text.replace(form, MASK)
        return text
