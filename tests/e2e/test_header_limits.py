"""`amanat serve` caps header count and size while it reads the request: 100,000 headers or
one of 32 MiB are answered 431 at once, and the server keeps answering everyone else. A
request pipelined before the refused one still gets its answer first."""

from __future__ import annotations

import json
import select
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import h11
import httpx
import pytest
from tests.e2e.conftest import START_TIMEOUT, server_env
from tests.support.processes import AMANAT, answers_healthz, free_port, run_amanat, serving

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[tuple[str, int], Path]]:
    """The server's address and its log (JSON lines)."""
    workdir = tmp_path_factory.mktemp("header-limits")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = server_env(
        workdir,
        base_url,
        AMANAT_RAIL__MOUNT_SANDBOX="false",
        AMANAT_OBSERVABILITY__LOG_JSON="true",
    )
    run_amanat(["migrate"], env, workdir)
    log = workdir / "server.log"
    with serving(
        [*AMANAT, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env,
        workdir,
        log,
        ready=lambda: answers_healthz(base_url),
        timeout=START_TIMEOUT,
    ):
        yield ("127.0.0.1", port), log


@pytest.fixture(scope="module")
def server(served: tuple[tuple[str, int], Path]) -> tuple[str, int]:
    return served[0]


def _send_head(address: tuple[str, int], head: bytes) -> bytes:
    """Sends the request head in chunks until the server answers; returns the answer."""
    with socket.create_connection(address, timeout=30) as sock:
        for start in range(0, len(head), 16_384):
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(head[start : start + 16_384])
            except (BrokenPipeError, ConnectionResetError):
                break
        answer = b""
        while True:
            try:
                chunk = sock.recv(65_536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
        return answer


def _send_whole(address: tuple[str, int], request: bytes) -> bytes:
    """Sends ``request`` in one write, however the server answers; returns all it says."""
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65_536):
            answer += chunk
        return answer


def _assert_431(answer: bytes) -> None:
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    problem = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert problem["code"] == "request_header_fields_too_large"
    assert problem["status"] == 431


def test_a_hundred_thousand_headers_are_431(server: tuple[str, int]) -> None:
    headers = b"".join(b"X-H%d: 1\r\n" % i for i in range(100_000))
    _assert_431(_send_head(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n"))


def test_a_32_mib_header_is_431(server: tuple[str, int]) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (32 << 20) + b"\r\n\r\n"
    _assert_431(_send_head(server, head))


def test_101_small_headers_are_431_and_100_pass(server: tuple[str, int]) -> None:
    host, port = server
    many = [(f"x-h{i}", "1") for i in range(100)]  # with Host & co. this is over 100
    assert httpx.get(f"http://{host}:{port}/healthz", headers=many).status_code == 431
    fine = [(f"x-h{i}", "1") for i in range(90)]
    assert httpx.get(f"http://{host}:{port}/healthz", headers=fine).status_code == 200


def test_the_server_still_answers_after_refusals(server: tuple[str, int]) -> None:
    host, port = server
    for _ in range(3):
        _send_head(server, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 100_000 + b"\r\n\r\n")
    assert httpx.get(f"http://{host}:{port}/healthz", timeout=5).status_code == 200


def _log_records(log: Path) -> list[dict[str, object]]:
    lines = log.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_a_request_pipelined_before_a_refused_one_is_answered_first(
    served: tuple[tuple[str, int], Path],
) -> None:
    address, log = served
    request_id = f"req_pipelined{uuid.uuid4().hex[:12]}"
    first = f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: {request_id}\r\n\r\n".encode()
    many = b"".join(b"X-H%d: 1\r\n" % i for i in range(150))
    second = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n"

    answer = _send_head(address, first + second)

    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    refused_at = answer.find(b"HTTP/1.1 431 ")
    assert refused_at > 0, answer
    _assert_431(answer[refused_at:])
    assert answer.count(b"HTTP/1.1 ") == 2, answer
    # The first request's own log line comes last (after any error it raised); wait for it.
    deadline = time.monotonic() + 30
    while not any(
        r.get("event") == "http_request" and r.get("request_id") == request_id
        for r in _log_records(log)
    ):
        assert time.monotonic() < deadline, log.read_text(errors="replace")
        time.sleep(0.1)
    errors = [r for r in _log_records(log) if r.get("level") in {"error", "critical"}]
    assert errors == [], errors


def test_a_request_pipelined_before_an_oversized_head_is_answered_first(
    server: tuple[str, int],
) -> None:
    first = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    second = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"c" * 100_000 + b"\r\n\r\n"
    answer = _send_whole(server, first + second)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    refused_at = answer.find(b"HTTP/1.1 431 ")
    assert refused_at > 0, answer
    _assert_431(answer[refused_at:])


def test_a_body_read_with_its_head_does_not_count_as_head(server: tuple[str, int]) -> None:
    body = b"d" * 60_000
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    request += b"Content-Length: %d\r\n\r\n" % len(body) + body
    answer = _send_whole(server, request)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]


def test_answers_pipelined_on_one_connection_arrive_whole_and_in_order(
    server: tuple[str, int],
) -> None:
    # Each answer's head leaves with its body (platform/http/one_write.py). A GET, a HEAD
    # (a head and no body) and a refusal, pipelined on one connection, must still read
    # as three whole answers, in order, as a strict HTTP/1.1 parser (h11) reads them.
    asked = [("GET", "/healthz"), ("HEAD", "/healthz"), ("GET", "/v1/payments")]
    wire = b"".join(
        f"{method} {path} HTTP/1.1\r\nHost: x\r\n".encode()
        + (b"Connection: close\r\n" if i == len(asked) - 1 else b"")
        + b"\r\n"
        for i, (method, path) in enumerate(asked)
    )
    client = h11.Connection(h11.CLIENT)
    client.receive_data(_send_whole(server, wire))
    answers: list[tuple[int, dict[str, str], bytes]] = []
    for i, (method, path) in enumerate(asked):
        last = i == len(asked) - 1
        headers = [("Host", "x")] + ([("Connection", "close")] if last else [])
        client.send(h11.Request(method=method, target=path, headers=headers))
        client.send(h11.EndOfMessage())
        head, body = None, b""
        while True:
            event = client.next_event()
            assert event is not h11.NEED_DATA, answers
            if isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
        assert head is not None
        fields = {k.decode(): v.decode() for k, v in head.headers}
        answers.append((head.status_code, fields, body))
        if not last:
            client.start_next_cycle()
    (health, _, health_body), (head_status, head_fields, head_body), (refused, _, refusal) = answers
    assert health == 200 and json.loads(health_body)["status"] == "ok"
    # /healthz is a GET route: HEAD is refused, with a head that declares the problem's
    # length and no body.
    assert head_status == 405 and head_body == b""
    assert int(head_fields["content-length"]) > 0
    assert refused == 401 and json.loads(refusal)["code"] == "unauthorized"
