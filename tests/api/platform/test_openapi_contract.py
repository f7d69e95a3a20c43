"""Schemathesis drives every documented operation with generated input, in process.

No generated request may produce a 5xx, and every response must match the status codes,
content types and schemas the OpenAPI document promises, problem responses included.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from tests.conftest import make_database

from amanat.app import create_app
from amanat.platform.settings import DatabaseSettings, Settings

_tmp = Path(__import__("tempfile").mkdtemp(prefix="amanat-schemathesis-"))
_url, _drop = make_database(_tmp)

app = create_app(
    Settings(
        database=DatabaseSettings(url=_url),
        auth={"sandbox_credentials_file": _tmp / "creds.json"},
        crypto={"sandbox_master_key_file": _tmp / "master.key"},
    )
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module", autouse=True)
def _drop_database():  # type: ignore[no-untyped-def]
    yield
    _drop()


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_operation_honours_its_contract(case: schemathesis.Case) -> None:
    # Opaque values (cursors, ids, tokens) are schema-valid strings that the server must
    # still refuse, so "any schema-valid input is accepted" cannot hold for them.
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
