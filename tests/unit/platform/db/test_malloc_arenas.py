"""The server caps glibc's malloc arenas before its database threads start."""

from __future__ import annotations

import platform

import pytest

from amanat.platform.db import malloc_arenas


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_the_cap_is_set_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[int, int]] = []
    real_cdll = malloc_arenas.ctypes.CDLL

    class Recording:
        def __init__(self, name: str | None) -> None:
            self._libc = real_cdll(name)

        @property
        def mallopt(self):  # type: ignore[no-untyped-def]
            real = self._libc.mallopt

            class Call:
                argtypes: list[object] = []
                restype: object = None

                def __call__(self, option: int, value: int) -> int:
                    asked.append((option, value))
                    return int(real(option, value))

            return Call()

    monkeypatch.setattr(malloc_arenas.ctypes, "CDLL", Recording)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert malloc_arenas.cap_malloc_arenas() is True
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert malloc_arenas.cap_malloc_arenas() is True
    monkeypatch.setenv("MALLOC_ARENA_MAX", "many")  # not a number: the default
    assert malloc_arenas.cap_malloc_arenas() is True
    assert asked == [(-8, 2), (-8, 4), (-8, 2)]


def test_without_mallopt_nothing_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoMallopt:
        def __init__(self, _name: str | None) -> None:
            pass

        def __getattr__(self, name: str) -> object:
            raise AttributeError(name)

    monkeypatch.setattr(malloc_arenas.ctypes, "CDLL", NoMallopt)
    assert malloc_arenas.cap_malloc_arenas() is False
