"""How an HTTP edge reaches a service: by its type, from the process's container.

Routes ask for exactly the service they use (``find_service(request, PaymentService)``)
instead of being handed the whole container, so an edge depends on its own capability's
services and on nothing the composition root happens to hold (pypi/warehouse's
``request.find_service``).
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from fastapi import Request

T = TypeVar("T")


class ServiceLookup(Protocol):
    def get(self, kind: type[T]) -> T: ...


def find_service(request: Request, kind: type[T]) -> T:
    container: ServiceLookup = request.app.state.container
    return container.get(kind)
