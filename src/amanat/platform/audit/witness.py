"""Witnesses: copies of every audit seal kept where the database's owner cannot rewrite them.

A seal inside the database proves nothing to someone who can also delete it; the same seal
appended to a file on other storage (or posted to another party) anchors the chain outside
the database. ``amanat audit verify`` reads the file back and checks the chain against it.

The file is JSON Lines, one seal a line, in the shape ``amanat audit export-seals`` prints,
appended with ``O_APPEND`` under an exclusive ``flock`` (so two workers never interleave)
and ``fsync``-ed before the sealer moves on.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from amanat.kernel.clock import format_timestamp, parse_timestamp
from amanat.platform.audit.domain import Seal, UnreadableLine, WitnessLine

WITNESS_FILE_NAME = "audit-seals.jsonl"
_TAIL_BYTES = 4096


def seal_to_json(seal: Seal) -> dict[str, Any]:
    return {
        "seq": seal.seq,
        "head_hash": seal.head_hash,
        "signature": seal.signature,
        "public_key": seal.public_key,
        "sealed_at": format_timestamp(seal.sealed_at),
    }


def seal_from_json(data: Any) -> Seal:
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    seq, head_hash = data.get("seq"), data.get("head_hash")
    signature, public_key = data.get("signature"), data.get("public_key")
    sealed_at = data.get("sealed_at")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ValueError("seq is not a positive integer")
    if not (
        isinstance(head_hash, str)
        and isinstance(signature, str)
        and isinstance(public_key, str)
        and isinstance(sealed_at, str)
    ):
        raise ValueError("head_hash, signature, public_key and sealed_at must be strings")
    return Seal(
        seq=seq,
        head_hash=head_hash,
        signature=signature,
        public_key=public_key,
        sealed_at=parse_timestamp(sealed_at),
    )


def witness_path(configured: Path) -> Path:
    return configured / WITNESS_FILE_NAME if configured.is_dir() else configured


def iter_witness_file(path: Path) -> Iterator[WitnessLine]:
    """Every seal the file holds now, line by line (the file may be large; lines appended
    after this call are not read); lines that do not parse are yielded as
    :class:`UnreadableLine`, never raised."""
    size = path.stat().st_size if path.exists() else 0
    return _lines(path, size)


def _lines(path: Path, size: int) -> Iterator[WitnessLine]:
    if size == 0:
        return
    with path.open("rb") as handle:
        for number, raw in enumerate(_up_to(handle, size), start=1):
            if not raw.strip():
                continue
            try:
                yield seal_from_json(json.loads(raw))
            except (ValueError, TypeError) as exc:
                yield UnreadableLine(number, str(exc)[:120])


def _up_to(handle: Any, size: int) -> Iterator[bytes]:
    read = 0
    for raw in handle:
        if read + len(raw) > size:
            return  # a line being appended right now: not part of what was there
        read += len(raw)
        yield raw


class FileWitness:
    """An append-only JSON Lines file; it can tell how far it got, so a sealer catches up
    seals a failed write missed."""

    name = "file"

    def __init__(self, configured: Path) -> None:
        self.path = witness_path(configured)

    async def published_up_to(self) -> int | None:
        return await asyncio.to_thread(self._newest_seq)

    async def publish(self, seals: list[Seal]) -> None:
        if seals:
            await asyncio.to_thread(self._append, seals)

    def read(self) -> Iterator[WitnessLine]:
        return iter_witness_file(self.path)

    def _newest_seq(self) -> int:
        if not self.path.exists():
            return 0
        with self.path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - _TAIL_BYTES))
            lines = handle.read().splitlines()
        for raw in reversed(lines):
            try:
                return seal_from_json(json.loads(raw)).seq
            except (ValueError, TypeError):
                continue
        return 0

    def _append(self, seals: list[Seal]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            newest = self._newest_seq()  # another worker may have written them meanwhile
            lines = "".join(
                json.dumps(seal_to_json(s), sort_keys=True) + "\n" for s in seals if s.seq > newest
            )
            if lines:
                os.write(fd, lines.encode())
                os.fsync(fd)
        finally:
            os.close(fd)


class HttpWitness:
    """POSTs each seal to another party's endpoint. It cannot be read back, so after a
    restart it sends only seals made from then on."""

    name = "http"

    def __init__(self, http: httpx.AsyncClient, url: str, *, timeout_seconds: float) -> None:
        self._http = http
        self._url = url
        self._timeout = timeout_seconds
        self._sent_up_to: int | None = None

    async def published_up_to(self) -> int | None:
        return self._sent_up_to

    async def publish(self, seals: list[Seal]) -> None:
        for seal in seals:
            response = await self._http.post(
                self._url, json=seal_to_json(seal), timeout=self._timeout
            )
            response.raise_for_status()
            self._sent_up_to = seal.seq
