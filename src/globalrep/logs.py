"""Logging for the workflow's jobs: one log file per job, warnings and errors on stderr.

Imports no task, so every script can use it without loading the task registry.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from globalrep.errors import GlobalrepError


def setup_logging(log_path: str | os.PathLike | None, level: int = logging.INFO) -> None:
    """Log to ``log_path``, warnings and errors also to stderr (parallel jobs share the
    terminal); uncaught errors end up in the log too."""
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
    previous_hook = sys.excepthook

    def log_uncaught(kind, error, traceback):
        if issubclass(kind, GlobalrepError):
            logging.getLogger("globalrep").error("%s", error)
        else:
            logging.getLogger("globalrep").error("uncaught error", exc_info=(kind, error, traceback))
        previous_hook(kind, error, traceback)

    sys.excepthook = log_uncaught
