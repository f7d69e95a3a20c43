"""request_path gives what Starlette's request.url.path gives, for any path and host."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from amanat.platform.http.paths import request_path

_PATH_CHARS = st.sampled_from(list("/abcZ09-._~!$&'()*+,;=:@%?#\\ \t\n\x00é/"))


def _request(path: str, host: bytes | None, query: bytes) -> Request:
    headers = [(b"host", host)] if host is not None else []
    return Request(
        {
            "type": "http",
            "method": "POST",
            "path": path,
            "query_string": query,
            "headers": headers,
            "scheme": "http",
            "server": ("127.0.0.1", 8000),
        }
    )


@given(
    st.lists(_PATH_CHARS, max_size=20).map(lambda chars: "/" + "".join(chars)),
    st.sampled_from([b"api.example.pk", b"127.0.0.1:8000", b"[::1]:80", b"bad host", None]),
    st.sampled_from([b"", b"a=1", b"x=%20#y"]),
)
def test_the_same_path_as_starlettes_url(path: str, host: bytes | None, query: bytes) -> None:
    assert request_path(_request(path, host, query)) == _request(path, host, query).url.path


def test_an_ordinary_path_is_the_scopes_own() -> None:
    request = _request("/v1/payments/pay_01ABC/cancel", b"api.example.pk", b"")
    assert request_path(request) == "/v1/payments/pay_01ABC/cancel"
    assert not hasattr(request, "_url"), "no URL was built"
