"""The built-in records connector: rows of CSV, JSON and JSON Lines files, one record each."""

from .connector import RecordsConfig, RecordsConnector

__all__ = ["RecordsConfig", "RecordsConnector"]
