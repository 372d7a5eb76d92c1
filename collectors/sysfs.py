"""Reading sysfs attribute files under a configurable root (the fixtures are a ``/sys``)."""

from __future__ import annotations

from pathlib import Path

from fleetwatch.plugins import CollectError


class Missing:
    """Why a value is absent: the file is empty, unreadable or vanished (not an error by itself)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"Missing({self.reason!r})"


def read_attr(path: Path) -> str | Missing:
    """The stripped text of one attribute file, or :class:`Missing` with the reason."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        return Missing("vanished")
    except OSError as exc:  # EIO/ENODATA from a powered-down sensor, EACCES, ...
        return Missing(f"unreadable ({exc.strerror or exc})")
    return text if text else Missing("empty")


def read_int(path: Path, errors: list[CollectError]) -> int | None:
    """An integer attribute; a missing, empty or non-integer file is one error."""
    text = read_attr(path)
    if isinstance(text, Missing):
        errors.append(CollectError(str(path), f"{text.reason}"))
        return None
    try:
        return int(text)
    except ValueError:
        errors.append(CollectError(str(path), f"not an integer: {text[:40]!r}"))
        return None


def sorted_numerically(paths: list[Path]) -> list[Path]:
    """``x2`` before ``x10``: sort by the trailing number of the name."""

    def key(path: Path) -> tuple[str, int]:
        stem = path.name.rstrip("0123456789")
        digits = path.name[len(stem) :]
        return stem, int(digits) if digits else -1

    return sorted(paths, key=key)
