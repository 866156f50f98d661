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


class WithoutTraceback(logging.Filter):
    """Drop a record's traceback: a driver's exception text may quote a row's value."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


def setup_logging(log_format: str = "text", level: str = "warning") -> None:
    """Send the package's logs to stderr in the given format, replacing earlier setup.

    SQLAlchemy's own records (say, the pool's "Exception during reset or similar" when
    a dropped connection is given back) would otherwise reach Python's last-resort
    handler and print a traceback after our one-line error. They are shown, one line
    each and without the traceback, only with `--log-level debug`. Never below WARNING:
    SQLAlchemy's INFO records are its SQL echo, with bound values.
    """
    formatter = JsonFormatter() if log_format == "json" else TextFormatter()
    for name, logger_level in (
        ("gdpr_sweep", level.upper()),
        ("sqlalchemy", "WARNING" if level.lower() == "debug" else "CRITICAL"),
    ):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(formatter)
        handler.addFilter(WithoutTraceback())
        logger.addHandler(handler)
        logger.setLevel(logger_level)
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
