"""The built-in web connector: pages fetched over HTTP(S) from listed URLs and a sitemap."""

from .config import WebConfig
from .connector import WebConnector

__all__ = ["WebConfig", "WebConnector"]
