"""Logging to stderr, as text or one JSON object per line (for log shippers).

Results go to stdout; logs to stderr. Log records carry events, database names, rule
ids and counts (passed as `extra`), never a value read from a row.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys

#: Fields our records may carry in `extra`; nothing else is copied into JSON lines.
FIELDS = (
    "event",
    "database",
    "rule",
    "table",
    "rows",
    "run_id",
    "status",
    "seconds",
    "exit_code",
    "head",
    "lock_wait_seconds",
    "append_seconds",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            if hasattr(record, name):
                document[name] = getattr(record, name)
        return json.dumps(document, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{n}={getattr(record, n)}" for n in FIELDS if hasattr(record, n))
        return f"gdpr-sweep {record.levelname.lower()}: {record.getMessage()}" + (
            f" ({fields})" if fields else ""
        )


def setup_logging(log_format: str = "text", level: str = "warning") -> None:
    """Send the package's logs to stderr in the given format, replacing earlier setup."""
    logger = logging.getLogger("gdpr_sweep")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False


def report_fatal(message: str, exit_code: int) -> bool:
    """Log a command's fatal error as a record when logs are JSON; True if it was logged.

    Log shippers then see the error in the same format as everything else; with text
    logs the CLI prints its usual one line `error: ...` instead.
    """
    logger = logging.getLogger("gdpr_sweep")
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        return False
    logger.error(message, extra={"event": "error", "exit_code": exit_code})
    return True
