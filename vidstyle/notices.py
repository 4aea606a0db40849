"""What the user is told besides results: one honest line when something is off but the job
can go on (warnings), and where the full story of an unexpected error was written (logs).

Library code never prints: it calls `warn()`, which logs on the "vidstyle" logger (the CLI shows
each as `vidstyle: warning: FILE: what`). The same line is said once per command, however many
readers meet the same file; `capture()` collects what was said while a block ran (batch mode
records it per file in its report), including lines already said before it.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path

from vidstyle.errors import file_of

logger = logging.getLogger("vidstyle")

_lock = threading.Lock()
_said: set[str] = set()
_captures: list[list[str]] = []


def line(message: str, path: str | os.PathLike[str] | None = None) -> str:
    return f"{os.fspath(path)}: {message}" if path is not None else message


def warn(message: str, path: str | os.PathLike[str] | None = None) -> str:
    """Tell the user once (per command) what is off; returns the line."""
    text = line(message, path)
    with _lock:
        first = text not in _said
        _said.add(text)
        for seen in _captures:
            if text not in seen:
                seen.append(text)
    if first:
        logger.warning(text)
    return text


def reset() -> None:
    """Forget what was said (a new command starts: it says its warnings again)."""
    with _lock:
        _said.clear()


@contextlib.contextmanager
def capture() -> Iterator[list[str]]:
    """The warnings given while the block runs (from any thread), each once."""
    seen: list[str] = []
    with _lock:
        _captures.append(seen)
    try:
        yield seen
    finally:
        with _lock:
            _captures.remove(seen)


# -- unexpected errors: one line, the traceback in a log file ----------------------------


def log_dir() -> Path:
    """Where tracebacks go: $VIDSTYLE_LOG_DIR, else the cache folder's logs/ (the same
    $VIDSTYLE_CACHE / $XDG_CACHE_HOME rule as the model cache)."""
    if os.environ.get("VIDSTYLE_LOG_DIR"):
        return Path(os.environ["VIDSTYLE_LOG_DIR"])
    if os.environ.get("VIDSTYLE_CACHE"):
        return Path(os.environ["VIDSTYLE_CACHE"]) / "logs"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vidstyle" / "logs"


def save_traceback(text: str) -> Path | None:
    """Write a traceback (or any report) to a new log file; None if nowhere is writable."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"vidstyle-{stamp}-{os.getpid()}.log"
    command = " ".join(["vidstyle", *sys.argv[1:]])
    for folder in (log_dir(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            with path.open("a") as fh:
                fh.write(f"$ {command}\n{text}\n")
            return path
        except OSError:
            continue
    return None


def unexpected_line(exc: BaseException, subject: object = None, hint: bool = True) -> str:
    """The one line for an exception that is not a VidstyleError: the file it happened on,
    what it was, and where the traceback was saved."""
    where = file_of(exc) or (str(subject) if subject is not None else None)
    if isinstance(exc, OSError) and exc.strerror:  # the system said no: say what it said
        what = exc.strerror
        if exc.filename and str(exc.filename) != where:
            what += f" ({exc.filename})"
    else:
        text = (str(exc).strip().splitlines() or [""])[0]
        name = type(exc).__name__
        what = f"internal error ({name}: {text})" if text else f"internal error ({name})"
    saved = save_traceback("".join(traceback.format_exception(exc)))
    if saved is not None:
        what += f"; traceback in {saved}"
    if hint:
        what += " (--debug shows it)"
    return f"{where}: {what}" if where else what
