"""Logging for the workflow's jobs: one log file per job, warnings and errors on stderr.

Imports no task, so every script can use it without loading the task registry.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from globalrep.errors import GlobalrepError, environment_fault


def setup_logging(log_path: str | os.PathLike | None, level: int = logging.INFO) -> None:
    """Log to ``log_path``, warnings and errors also to stderr (parallel jobs share the
    terminal). An uncaught :class:`GlobalrepError` (bad input, explained) is logged as its
    message alone, once, with the log's path, and so is an error of the machine (a full disk, a
    read-only or forbidden file: see :func:`~globalrep.errors.environment_fault`); any other
    uncaught error is a bug and is logged with its traceback. Either way it is written once to each place, not again by Python."""
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.WARNING)
    handlers: list[logging.Handler] = [stderr]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)
    for chatty in ("fontTools", "matplotlib", "PIL", "urllib3", "filelock"):
        logging.getLogger(chatty).setLevel(max(level, logging.WARNING))
    where = f" (log: {log_path})" if log_path else ""

    def log_uncaught(kind, error, traceback):
        logger = logging.getLogger("globalrep")
        if issubclass(kind, GlobalrepError):
            logger.error("%s%s", error, where)
        elif environment_fault(error):
            logger.error("%s%s", environment_fault(error), where)
        else:
            logger.error("uncaught error%s", where, exc_info=(kind, error, traceback))

    sys.excepthook = log_uncaught
