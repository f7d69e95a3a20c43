"""How an imported statement is refused: whole, with every fault located.

A statement is evidence: if part of it cannot be read, the rest cannot be trusted to be
complete, so a file with any fault imports nothing. The operator gets every fault at once
(up to :data:`MAX_FILE_ERRORS`), each with where it is, so one round of fixes suffices.
Messages name elements, columns and amounts, never account numbers or names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from amanat.kernel.errors import InvalidInput

# Enough to see the pattern of a systematic fault without a megabyte of repeats.
MAX_FILE_ERRORS = 100


@dataclass(frozen=True, slots=True)
class FileError:
    """One fault: ``location`` is "line 14, Stmt[1]/Ntry[3]/Amt" or "line 7"."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class StatementRejected(InvalidInput):
    """The file was refused as a whole; ``errors`` says everything found wrong with it.

    ``truncated`` is true when reading stopped at :data:`MAX_FILE_ERRORS` faults: there
    may be more after the last one listed.
    """

    code = "statement_rejected"

    def __init__(self, errors: Sequence[FileError], *, truncated: bool = False) -> None:
        self.errors: tuple[FileError, ...] = tuple(errors[:MAX_FILE_ERRORS])
        self.truncated = truncated
        super().__init__(_summary(self.errors, truncated), code=self.code)


def _summary(errors: tuple[FileError, ...], truncated: bool) -> str:
    if not errors:
        return "The statement file was rejected."
    more = "or more " if truncated else ""
    count = f"{len(errors)} {more}error{'s' if len(errors) > 1 or truncated else ''}"
    return f"The statement file was rejected ({count}); the first: {errors[0]}"


class ErrorCollector:
    """Gathers faults while a file is read; past the cap it stops the reading at once."""

    __slots__ = ("errors",)

    def __init__(self) -> None:
        self.errors: list[FileError] = []

    def add(self, location: str, message: str) -> None:
        if len(self.errors) >= MAX_FILE_ERRORS:
            raise StatementRejected(self.errors, truncated=True)
        self.errors.append(FileError(location, message))

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise StatementRejected(self.errors)
