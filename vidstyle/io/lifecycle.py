"""Context-manager behaviour shared by readers and writers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class Closing(ABC):
    """`with X(...) as x:` closes x on the way out."""

    @abstractmethod
    def close(self) -> None: ...

    def _leave(self, failed: bool) -> None:
        self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._leave(failed=exc_type is not None)


class Atomic(Closing):
    """A writer that publishes on close() and discards on abort(): leaving a `with` block by an
    exception aborts, so a failed or interrupted job never leaves a half-written output."""

    @abstractmethod
    def abort(self) -> None: ...

    def _leave(self, failed: bool) -> None:
        if failed:
            self.abort()
        else:
            self.close()
