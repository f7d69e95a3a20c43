"""A request's path exactly as ``request.url.path`` gives it, without building the URL.

Starlette builds ``request.url`` from the whole scope (scheme, the Host header, the query)
and parses it again to read ``.path``: in the payout profile that was about 1 % of the API's
CPU, for a value that for any ordinary path is ``scope["path"]`` itself. An ordinary path
(unreserved and sub-delimiter characters, ``%``, ``:``, ``@``, ``/``; not starting ``//``)
is returned as it is; any other takes Starlette's own way, so the answer is the same for
every path (a property test compares them).
"""

from __future__ import annotations

import re

from starlette.requests import HTTPConnection

_ORDINARY = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*")


def request_path(request: HTTPConnection) -> str:
    path = request.scope.get("path")
    if isinstance(path, str) and _ORDINARY.fullmatch(path) and not path.startswith("//"):
        return path
    return request.url.path
