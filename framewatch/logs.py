"""Logging set-up: readable text for people, one JSON object a line for machines."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_STD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
_SECRET_HINTS = ("password", "secret", "token", "api_key", "authorization")


def one_line(text: str) -> str:
    """``text`` with control and other unprintable characters escaped (``\\n``, ``\\x1b``):
    a value a client sent (an id, a header, a URL) can neither start a forged log line nor
    steer a terminal. JSON lines are safe by their encoding; text lines go through this."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in record.__dict__.items():
            if k not in _STD and not k.startswith("_"):
                out[k] = "***" if any(h in k.lower() for h in _SECRET_HINTS) else v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        t = time.strftime("%H:%M:%S", time.localtime(record.created))
        ids = " ".join(
            f"{k}={record.__dict__[k]}"
            for k in ("stream_id", "account_id", "frame_id", "decision_id", "incident_id")
            if k in record.__dict__
        )
        line = one_line(f"{t} {record.levelname[0]} {self.process:<8} {record.getMessage()}")
        if ids:
            line += one_line(f"  [{ids}]")
        if record.exc_info:  # a traceback keeps its lines: it is framewatch's own text
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup(process: str, level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(process))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "kafka", "faust", "mode", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
