"""structlog JSON logging with personal data masked before rendering."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from shared.pii import mask


def mask_personal_data(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: every value, nested or in text, goes through `shared.pii.mask`."""
    return mask(dict(event_dict))  # type: ignore[no-any-return]


# Libraries whose debug output dumps raw AMQP frames, message bodies and personal data included
# (as UTF-8 byte escapes that no masking recognises): never below info, whatever our level.
_FRAME_DUMPERS = ("aiormq", "aio_pika")


class _JsonHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler: standard-library records rendered like ours (JSON, masked)."""


def configure_logging(level: str = "info", *, service: str | None = None) -> None:
    level_no = logging.getLevelName(level.upper())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # Plain tracebacks: renderers that show local variables would leak personal data.
        structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        ),
    ]
    # Records of other libraries (aio-pika, asyncpg, asyncio) take the same road, so every
    # line is JSON and goes through the masking; before, they were printed as they came.
    handler = _JsonHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                mask_personal_data,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _JsonHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level_no)
    for name in _FRAME_DUMPERS:
        logging.getLogger(name).setLevel(max(level_no, logging.INFO))
    structlog.configure(
        processors=[*shared, mask_personal_data, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    if service:
        structlog.contextvars.bind_contextvars(service=service)
