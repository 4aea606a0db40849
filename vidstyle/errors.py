"""User-facing errors: each one becomes a single clear line and a non-zero exit in the CLI."""

from __future__ import annotations

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
