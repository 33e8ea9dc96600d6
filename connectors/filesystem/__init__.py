"""The built-in filesystem connector."""

from .connector import FilesystemConfig, FilesystemConnector

__all__ = ["FilesystemConfig", "FilesystemConnector"]
