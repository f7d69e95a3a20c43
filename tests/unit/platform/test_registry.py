"""The registry collects what capabilities declare; the container builds each service once."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from amanat.bootstrap import CAPABILITIES, registry
from amanat.kernel.clock import FrozenClock
from amanat.platform.registry import Registry, ServiceContainer, ServiceCycle
from amanat.platform.settings import Settings


class Thing:
    def __init__(self, n: int) -> None:
        self.n = n


class Other:
    def __init__(self, thing: Thing) -> None:
        self.thing = thing


def _container(reg: Registry, **instances: Any) -> ServiceContainer:
    return ServiceContainer(
        reg,
        settings=Settings(),
        clock=FrozenClock(),
        transactions=object(),  # type: ignore[arg-type]
        http=httpx.AsyncClient(),
        instances={type(v): v for v in instances.values()},
    )


def test_a_service_is_built_once_on_first_use() -> None:
    reg = Registry()
    built: list[int] = []

    def make(s: Any) -> Thing:
        built.append(1)
        return Thing(len(built))

    reg.provide(Thing, make)
    reg.provide(Other, lambda s: Other(s.get(Thing)))
    services = _container(reg)
    assert built == []
    assert services.get(Other).thing is services.get(Thing)
    assert built == [1]


def test_declaring_the_same_thing_twice_is_refused() -> None:
    reg = Registry()
    reg.provide(Thing, lambda s: Thing(1))
    with pytest.raises(ValueError):
        reg.provide(Thing, lambda s: Thing(2))
    reg.add_repository("things", lambda conn: None)
    with pytest.raises(ValueError):
        reg.add_repository("things", lambda conn: None)
    reg.add_job("thing.do", lambda s: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError):
        reg.add_job("thing.do", lambda s: None)  # type: ignore[arg-type,return-value]
    reg.add_retention_class("things", lambda conn: None)
    with pytest.raises(ValueError):
        reg.add_retention_class("things", lambda conn: None)


def test_a_service_that_needs_itself_is_reported() -> None:
    reg = Registry()
    reg.provide(Thing, lambda s: Thing(s.get(Other).thing.n))
    reg.provide(Other, lambda s: Other(s.get(Thing)))
    with pytest.raises(ServiceCycle):
        _container(reg).get(Thing)


def test_nothing_provides_an_unknown_service() -> None:
    with pytest.raises(LookupError):
        _container(Registry()).get(Thing)


def test_replacing_a_port_reaches_what_is_built_afterwards() -> None:
    reg = Registry()
    reg.provide(Thing, lambda s: Thing(1))
    services = _container(reg)
    replaced = services.with_instances({Thing: Thing(2)})
    assert replaced.get(Thing).n == 2
    assert services.get(Thing).n == 1


def test_every_capability_declares_routes_tables_and_no_duplicates() -> None:
    collected = registry()
    assert len(CAPABILITIES) == 9
    paths = [(r.path, sorted(r.methods)) for router in collected.routers for r in router.routes]  # type: ignore[attr-defined]
    assert len(paths) == len(set(map(str, paths))), "two routers declare the same route"
    names = [t.name for t in collected.tables]
    assert len(names) == len(set(names))
    assert {"payments", "webhook_endpoints", "partners", "refresh_tokens", "consents"} <= set(names)
    assert {"rail.submit", "rail.enquire", "openbanking.return_funds"} == set(
        collected.job_handlers
    )
    assert {"oauth_artifacts", "operator_sessions", "data_subjects", "webhook_deliveries"} <= (
        set(collected.retention_classes)
    )
