"""Strongroom's Connector API and built-in connectors."""

from strongroom.connectors.api import Config, Connector, ConnectorError, Document, SkippedItem

__all__ = ["Config", "Connector", "ConnectorError", "Document", "SkippedItem"]
