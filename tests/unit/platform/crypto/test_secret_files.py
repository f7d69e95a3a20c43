"""Processes starting together on a fresh sandbox agree on one generated key file."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

import pytest

from amanat.platform.audit.seals import Ed25519SealSigner
from amanat.platform.crypto.master_keys import LocalMasterKey
from amanat.platform.crypto.secret_files import create_once, replace_atomically

RACERS = 8


def _master_key_id(path: str, barrier: multiprocessing.synchronize.Barrier) -> str:
    barrier.wait()
    key, created = LocalMasterKey.from_file(Path(path), create=True)
    return f"{key.key_id} {created}"


def _seal_public_key(path: str, barrier: multiprocessing.synchronize.Barrier) -> str:
    barrier.wait()
    return Ed25519SealSigner.from_file(Path(path), create=True).public_key


def _race(target: object, path: Path) -> list[str]:
    context = multiprocessing.get_context("fork")
    with context.Manager() as manager:
        barrier = manager.Barrier(RACERS)
        with context.Pool(RACERS) as pool:
            return pool.starmap(target, [(str(path), barrier)] * RACERS)  # type: ignore[arg-type]


def test_racing_processes_share_one_master_key(tmp_path: Path) -> None:
    path = tmp_path / "var" / "master.key"
    results = [line.split() for line in _race(_master_key_id, path)]
    assert len({key_id for key_id, _ in results}) == 1
    assert [created for _, created in results].count("True") == 1
    assert LocalMasterKey.from_file(path, create=False)[0].key_id == results[0][0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["master.key"]  # no temporaries left


def test_racing_processes_share_one_seal_key(tmp_path: Path) -> None:
    path = tmp_path / "audit-seal.key"
    assert len(set(_race(_seal_public_key, path))) == 1


def test_a_process_that_loses_the_race_reads_the_winners_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interleaving every racer risks, made certain: this process saw no file, then
    another process wrote its key before this one could."""
    path = tmp_path / "master.key"
    winner, _ = LocalMasterKey.from_file(path, create=True)
    seal_path = tmp_path / "seal.key"
    seal_winner = Ed25519SealSigner.from_file(seal_path, create=True)
    monkeypatch.setattr(Path, "exists", lambda self: False)
    loser, created = LocalMasterKey.from_file(path, create=True)
    assert (loser.key_id, created) == (winner.key_id, False)
    assert Ed25519SealSigner.from_file(seal_path, create=True).public_key == (
        seal_winner.public_key
    )


def test_create_once_and_replace_atomically(tmp_path: Path) -> None:
    path = tmp_path / "a" / "secret"
    assert create_once(path, b"first") is True
    assert create_once(path, b"second") is False
    assert path.read_bytes() == b"first"
    replace_atomically(path, b"third")
    assert path.read_bytes() == b"third"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret"]
