"""The per-deployment key of the audit log's argument digests, kept outside the catalog."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from strongroom.server.errors import StrongroomError
from strongroom.server.settings import Settings

KEY_FILE_NAME = "audit.key"
MIN_KEY_BYTES = 16


def digest_key(settings: Settings) -> bytes:
    """``guard.digest_key`` if set, else the content of ``guard.digest_key_file`` (default
    ``audit.key`` beside the catalog), a random key written there with mode 0600 on first use."""
    configured = settings.guard.digest_key
    if configured is not None:
        return configured.get_secret_value().encode()
    file = settings.guard.digest_key_file
    path = settings.resolve(file) if file is not None else settings.data_dir / KEY_FILE_NAME
    try:
        if not path.exists():
            _create(path)
        key = path.read_bytes().strip()
    except OSError as exc:
        raise StrongroomError(f"digest key file {path}: {exc.strerror or exc}") from None
    if len(key) < MIN_KEY_BYTES:
        raise StrongroomError(f"digest key file {path}: shorter than {MIN_KEY_BYTES} bytes")
    return key


def _create(path: Path) -> None:
    """Write a new random key to ``path`` atomically (0600); a key another process wrote first wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
