"""User-facing errors: each one becomes a single clear line and a non-zero exit in the CLI."""

from __future__ import annotations

import contextlib
from pathlib import Path


class VidstyleError(Exception):
    """An error the user can act on. `str()` is the one line the CLI prints."""

    exit_code = 1

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        self.message = message
        super().__init__(f"{path}: {message}" if path is not None else message)


class MediaError(VidstyleError):
    """An input or output media file is missing, unreadable or unsupported."""


class StyleImageError(VidstyleError):
    """The style image can't be read."""


class ConfigError(VidstyleError):
    """An unknown preset, a bad config file or an invalid option value."""

    exit_code = 2


class ModelError(VidstyleError):
    """A model file is missing, corrupt or was made for another version."""


_FILE_ATTR = "_vidstyle_file"


def attach_file(exc: BaseException, path: str | Path) -> BaseException:
    """Remember which file an unexpected exception happened on (the innermost caller that
    knows wins), so the one line the CLI prints can name it."""
    if getattr(exc, _FILE_ATTR, None) is None:
        with contextlib.suppress(AttributeError, TypeError):  # exceptions without a __dict__
            setattr(exc, _FILE_ATTR, str(path))
    return exc


def file_of(exc: BaseException) -> str | None:
    """The file `attach_file` recorded, or a VidstyleError's own path."""
    if isinstance(exc, VidstyleError) and exc.path is not None:
        return str(exc.path)
    return getattr(exc, _FILE_ATTR, None) or getattr(exc, "filename", None)
