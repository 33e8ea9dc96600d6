"""Parsing a file within limits: in a worker process that is stopped when a file takes too long.

Parsers are third-party code fed untrusted bytes; a small file can expand enormously (a DOCX
of compressed XML) or make a parser work for minutes (a PDF of millions of operators). Each
file is parsed in one child process, reused from file to file so a sync pays the start-up
once; a file that overruns the time limit gets the child killed, and the next file a new one.
The parsers' log records (pypdf's warnings about a damaged file) are sent back to the parent,
whose logging configuration shows them like every other line.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import multiprocessing
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from .formats import Parsed, ParseError, format_for, import_parsers
from .formats.base import error_reason, format_size

logger = logging.getLogger(__name__)
_CONTEXT = multiprocessing.get_context("spawn")  # no fork of a process that holds threads and models
_GRACE = 2.0
_START_TIMEOUT = 120.0  # importing the parsers on a busy machine; not part of a file's time limit


@dataclass(frozen=True)
class Limits:
    """What one file may expand to."""

    max_text_chars: int
    max_unpacked_bytes: int


class ExtractionBug(ParseError):
    """A parser failed in an unexpected way (not a file problem it reports itself)."""


def extract(path: str, data: bytes, limits: Limits, encoding: str | None = None) -> Parsed:
    """Parse ``data`` by the format of ``path``, within ``limits`` (in the calling process);
    ``encoding`` is a known character set of an HTML page (an HTTP ``charset``).

    Containers are measured before they are parsed. Raises :class:`ParseError` with a
    reason for users (:class:`ExtractionBug` for a parser's own failure).
    """
    file_format = format_for(path)
    try:
        if file_format.unpacked_size is not None:
            unpacked = file_format.unpacked_size(data)
            if unpacked > limits.max_unpacked_bytes:
                raise ParseError(
                    f"unpacks to {format_size(unpacked)}, over the "
                    f"{format_size(limits.max_unpacked_bytes)} limit (max_unpacked_bytes)"
                )
        if file_format.name == "html" and encoding:
            from .formats import html  # the parsers load on first use

            parsed = html.parse(data, encoding)
        else:
            parsed = file_format.parse(data)
    except ParseError:
        raise
    except Exception as exc:  # one bad file never stops the source
        raise ExtractionBug(f"unexpected error: {error_reason(exc)}") from exc
    if len(parsed.text) > limits.max_text_chars:
        raise ParseError(
            f"extracted text of {len(parsed.text):,} characters, over the "
            f"{limits.max_text_chars:,} limit (max_text_chars)"
        )
    return parsed


class ExtractionWorker:
    """Runs :func:`extract` in one reusable child process, each call under ``timeout`` seconds.

    Not thread-safe: one caller at a time. :meth:`close` stops the child.
    """

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None

    @property
    def pid(self) -> int | None:
        """The current child's process id (None before the first file and after close)."""
        return self._process.pid if self._process is not None else None

    def extract(self, path: str, data: bytes, limits: Limits, encoding: str | None = None) -> Parsed:
        """:func:`extract` in the child. Raises ParseError when it fails, overruns or dies."""
        connection = self._start()
        deadline = time.monotonic() + self._timeout
        try:
            connection.send((path, data, limits, encoding))
            while True:
                if not connection.poll(max(0.0, deadline - time.monotonic())):
                    self._stop()
                    raise ParseError(
                        f"extraction took longer than the {self._timeout:g} s limit (parse_timeout)"
                    )
                kind, value = connection.recv()
                if kind != "log":
                    break
                _handle(value)
        except (EOFError, OSError) as exc:
            self._stop()
            raise ParseError("extraction worker stopped unexpectedly (out of memory?)") from exc
        if kind == "ok":
            assert isinstance(value, Parsed)
            return value
        if kind == "bug":
            logger.warning("%s: %s", path, value)
            raise ExtractionBug(value)
        raise ParseError(value)

    def close(self) -> None:
        """Ask the child to exit, and kill it if it does not within a moment."""
        if self._connection is not None:
            with contextlib.suppress(OSError):
                self._connection.send(None)
        if self._process is not None:
            self._process.join(_GRACE)
        self._stop()

    def _start(self) -> Connection:
        if self._process is None or self._connection is None or not self._process.is_alive():
            self._stop()
            parent, child = _CONTEXT.Pipe()
            level = logging.getLogger().getEffectiveLevel()
            process = _CONTEXT.Process(
                target=_serve, args=(child, level), name="strongroom-extract", daemon=True
            )
            process.start()
            child.close()
            self._process, self._connection = process, parent
            try:
                ready = parent.poll(_START_TIMEOUT) and parent.recv() == "ready"
            except (EOFError, OSError):
                ready = False
            if not ready:
                self._stop()
                raise ParseError("extraction worker did not start")
        return self._connection

    def _stop(self) -> None:
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join()
            self._process.close()
        if self._connection is not None:
            self._connection.close()
        self._process = self._connection = None


def _handle(record: logging.LogRecord) -> None:
    """A record logged in the child, handled by the parent's logger of the same name."""
    logger_of = logging.getLogger(record.name)
    if logger_of.isEnabledFor(record.levelno):
        logger_of.handle(record)


class _ToParent:
    """The queue a QueueHandler writes to: the connection back to the parent."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def put_nowait(self, record: logging.LogRecord) -> None:
        self._connection.send(("log", record))


def _serve(connection: Connection, level: int) -> None:
    """The child's loop: ``(path, data, limits, encoding)`` in, ``(kind, Parsed | reason)`` out (after any
    ``("log", record)``); None ends it. Records at ``level`` and above go to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops us
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(_ToParent(connection))]  # type: ignore[arg-type]
    root.setLevel(level)
    logging.captureWarnings(True)
    import_parsers()
    connection.send("ready")  # the parsers are imported: time limits start from here
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        path, data, limits, encoding = request
        try:
            reply: tuple[str, Parsed | str] = ("ok", extract(path, data, limits, encoding))
        except ExtractionBug as exc:
            reply = ("bug", str(exc))
        except ParseError as exc:
            reply = ("skip", str(exc))
        connection.send(reply)
