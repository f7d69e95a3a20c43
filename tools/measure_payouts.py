"""In-process measure of the payout create path: CPU ms per payout and payouts/s.

Runs N payouts (``Idempotency-Key`` each) through the app with httpx.ASGITransport,
``--concurrency`` at a time, on a fresh database of the kind AMANAT_TEST_DB names, and
prints the process CPU time (time.process_time) and the wall time they took. The
database server's own CPU is not counted. Not a benchmark (bench/ is): a before/after
check of one code path on one machine.

    AMANAT_TEST_DB=postgresql PYTHONPATH=src:. python tools/measure_payouts.py -n 2000 -c 64
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from tests.conftest import TEST_DB, make_database, wipe
from tests.support.oauth import ACTOR, bearer, funded_merchant

from amanat.app import create_app
from amanat.bootstrap import build_container
from amanat.platform.settings import DatabaseSettings, Settings

IBAN = "PK36SCBL0000001123456702"


def _body(i: int) -> dict[str, object]:
    return {
        "amount": 10_000,
        "currency": "PKR",
        "creditor": {"iban": IBAN, "name": "Ayesha Khan"},
        "reference": f"m-{i}",
    }


def _direct_worker(
    container: Any, merchant: Any, statuses: Counter[int], counter: Iterator[int]
) -> Callable[[int], Awaitable[None]]:
    """Payouts through the batcher itself: the cost of the payout without HTTP and auth."""
    from amanat.auth.domain import Caller
    from amanat.payments.batching import PayoutBatcher
    from amanat.payments.service import AccountIn
    from amanat.platform.idempotency.service import IdempotencyService

    batcher = container.get(PayoutBatcher)
    idempotency = container.get(IdempotencyService)
    caller = Caller(merchant.partner.id, merchant.id, ACTOR, merchant.partner)
    creditor = AccountIn(iban=IBAN, raast_id=None, name="Ayesha Khan")

    async def worker(n: int) -> None:
        for _ in range(n):
            i = next(counter)
            record = idempotency.new_record(merchant.id, f"d{i}", "h" * 64, "POST", "/v1/payments")
            prepare = functools.partial(
                container.payments.prepare_payout,
                caller,
                amount=10_000,
                currency="PKR",
                creditor=creditor,
                reference=f"m-{i}",
                description=None,
                metadata={},
            )
            outcome = await batcher.create(record, lambda exc: (422, {"code": exc.code}), prepare)
            statuses[outcome[0] if outcome else 0] += 1

    return worker


async def _run(total: int, concurrency: int, tmp: Path, url: str, direct: bool) -> None:
    settings = Settings(
        database=DatabaseSettings(url=url, pool_size=max(10, concurrency // 2)),
        auth={"sandbox_credentials_file": tmp / "creds.json"},
        crypto={
            "sandbox_master_key_file": tmp / "master.key",
            "audit_seal_key_file": tmp / "seal.key",
        },
        audit={"witness_file": tmp / "witness.jsonl"},
    )
    container = build_container(settings)
    try:
        app = create_app(container=container)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            merchant = await funded_merchant(container, "Measured", 10**13)
            auth = await bearer(http, merchant)
            statuses: Counter[int] = Counter()
            counter = iter(range(10**9))

            async def worker(n: int) -> None:
                for _ in range(n):
                    i = next(counter)
                    r = await http.post(
                        "/v1/payments", json=_body(i), headers=auth | {"Idempotency-Key": f"k{i}"}
                    )
                    statuses[r.status_code] += 1

            if direct:
                worker = _direct_worker(container, merchant, statuses, counter)
            await asyncio.gather(*[worker(2) for _ in range(concurrency)])  # warm up
            statuses.clear()
            per = total // concurrency
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.gather(*[worker(per) for _ in range(concurrency)])
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            done = per * concurrency
            print(
                f"{TEST_DB}{' (service, no HTTP)' if direct else ''}: {done} payouts, "
                f"concurrency {concurrency}: "
                f"{1000 * cpu / done:.2f} CPU ms/payout, {done / wall:.0f} payouts/s, "
                f"statuses {dict(statuses)}"
            )
            try:
                from amanat.payments.batching import PayoutBatcher

                batcher = container.get(PayoutBatcher)
                print(f"  batches {batcher.batches}, failed batches {batcher.fallbacks}")
            except (ImportError, LookupError, AttributeError):
                pass
    finally:
        await wipe(container)
        await container.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", "--total", type=int, default=2000)
    parser.add_argument("-c", "--concurrency", type=int, default=64)
    parser.add_argument(
        "--direct", action="store_true", help="call the batcher, not the HTTP route"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url, drop = make_database(Path(tmp))
        try:
            asyncio.run(_run(args.total, args.concurrency, Path(tmp), url, args.direct))
        finally:
            drop()  # type: ignore[operator]


if __name__ == "__main__":
    main()
