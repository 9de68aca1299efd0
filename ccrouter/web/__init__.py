"""HTTP API, live streams, wallboard and operator pages, metrics (the web feature)."""

from ccrouter.web.feature import WebFeature, install

__all__ = ["WebFeature", "install"]
