"""Structured logs: one JSON object per line, with the request id when there is one.

Only fields passed explicitly through ``extra`` are written: handlers log identifiers and
outcomes, never names, tokens, note text or addresses of patients.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


def _frames_only(exc: BaseException) -> str:
    """The exception's type and where it was raised, without its message: messages can carry
    data (a database error's DETAIL quotes the offending values)."""
    lines: list[str] = []
    current: BaseException | None = exc
    for _ in range(5):  # the exception and a few of its causes
        if current is None:
            break
        lines.append(type(current).__qualname__)
        lines += [f"  {f.filename}:{f.lineno} in {f.name}"
                  for f in traceback.extract_tb(current.__traceback__)]
        current = current.__cause__ or current.__context__
    return "\n".join(lines)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            out["exc"] = _frames_only(record.exc_info[1])
        return json.dumps(out, default=str)


# aiohttp's own loggers put the raw request line and headers into their messages and
# tracebacks when a request is malformed: the path can hold an invitation token and the
# headers a session cookie. Their records are reduced to the exception's type.
AIOHTTP_LOGGERS = ("aiohttp.server", "aiohttp.web", "aiohttp.websocket", "aiohttp.internal",
                   "aiohttp.client")


class RedactAiohttp(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        kind = record.exc_info[1].__class__.__name__ if record.exc_info and \
            record.exc_info[1] is not None else None
        record.msg = "aiohttp: " + (kind or "event") + (" (details withheld)" if kind else "")
        record.args = None
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log prints raw paths, which can hold invitation tokens: ours logs the
    # route pattern instead.
    logging.getLogger("aiohttp.access").disabled = True
    for name in AIOHTTP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactAiohttp) for f in logger.filters):
            logger.addFilter(RedactAiohttp())
