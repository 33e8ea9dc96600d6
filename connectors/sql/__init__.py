"""The built-in sql connector: rows of a query in SQLite or PostgreSQL, one record each."""

from .connector import SqlConfig, SqlConnector
from .secrets import Redactor, redact_url

__all__ = ["Redactor", "SqlConfig", "SqlConnector", "redact_url"]
