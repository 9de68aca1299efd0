"""structlog set-up: JSON lines in production, a readable console in the demo.

Per-call context (uniqueid, card) is bound with `structlog.contextvars` by the code that handles
the call; phone numbers are masked (all but the last 4 digits) when `log.mask_numbers` is on.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from ccrouter.config import LogSettings

NUMBER_KEYS = frozenset({"caller", "caller_num", "number_called", "callerid", "phone"})


def mask_number(value: str) -> str:
    """`79001234567` -> `*******4567`; short values are masked whole."""
    if len(value) <= 4:
        return "*" * len(value)
    return "*" * (len(value) - 4) + value[-4:]


def _mask_numbers(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Any:
    for key in NUMBER_KEYS.intersection(event):
        value = event[key]
        if isinstance(value, str) and value:
            event[key] = mask_number(value)
    return event


def configure_logging(settings: LogSettings, *, stream: Any = None) -> None:
    level = getattr(logging, settings.level.upper())
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if settings.mask_numbers:
        processors.append(_mask_numbers)
    if settings.format == "json":
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(level, logging.WARNING), stream=stream or sys.stderr)
