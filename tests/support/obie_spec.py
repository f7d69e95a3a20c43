"""Checking recorded open-banking traffic against the official UK Open Banking (OBIE)
Read/Write API v3.1.11 OpenAPI documents, vendored unchanged in specs/obie-v3.1.11/.

amanat's open-banking endpoints claim to speak the OBIE standard; a test records a request
or a response (method, concrete path, status, headers, body) and asks this module whether
the standard's own OpenAPI document agrees. A disagreement raises ``SpecViolation`` (an
``AssertionError``, so pytest shows it as a failed assertion) naming the operation, the
JSON path and the reason::

    operation_id = validate_response(
        "accounts", "POST", "/account-access-consents", 201, response.headers, response.content
    )

``api`` picks the document: "accounts" (account-info-openapi.yaml), "payments"
(payment-initiation-openapi.yaml) or "funds" (confirmation-funds-openapi.yaml). ``path`` is
relative to the API's base (the document's server URL, e.g. /open-banking/v3.1/aisp, is
also accepted and stripped); a query string is ignored.

Who does what. The JSON bodies are validated by jsonschema-rs (``jsonschema_rs``), a
maintained JSON Schema implementation that schemathesis, our dev dependency, depends on
and the lock file pins; its Draft 4 validator is the JSON Schema dialect OpenAPI 3.0
schemas are based on, and with ``validate_formats=True`` it checks ``format: date-time`` as
RFC 3339 (a timezone is required) and ``format: uri`` as an absolute URI. The pure-Python
``jsonschema`` package is not installed here, so it is not used. YAML is read by PyYAML
(also locked through schemathesis), with its C loader when present.

What is hand-written, and why: the OpenAPI plumbing around the validator. schemathesis
has path matching (``find_operation_by_path``) and response checks (status, headers,
schema), but each check wants its ``CheckContext``, a generated ``Case`` and its own
``Response`` type, and it validates no request body at all; wrapping a recorded exchange
into those costs more code than the few functions here, and would tie these tests to
schemathesis internals that change between releases. So this module does itself:

* Finding the operation for a concrete path, a literal segment beating a ``{parameter}``
  at the first position where two templates differ, as routers do.
* Choosing the response object (exact status, then ``2XX``-style ranges, then
  ``default``; an undocumented status is a violation) and checking the declared response
  headers and the request's header parameters: present when ``required: true`` (names
  compared without case), and each given value against its schema.
* Turning OpenAPI 3.0 schema objects into JSON Schema: among the keywords in use only
  ``nullable: true`` differs in meaning (it becomes ``type: [..., "null"]``). The converted
  ``components.schemas`` are registered once per document as one jsonschema-rs
  ``Registry`` resource, and each validator's ``#/components/...`` references point into
  it. Extension keywords such as ``x-namespaced-enum`` are ignored, as JSON Schema
  ignores unknown keywords: OBIE uses it for code lists an ASPSP may extend with its own
  namespaced values.

Schemas are enforced as the documents write them, quirks included; the helper adds no
schema rule of its own. Notably:

* ``pattern`` is a JSON Schema search, so the unanchored OBIE patterns (``[A-Z]{2,2}``,
  ``[0-9]{1,15}``) only ask for a match somewhere in the value.
* ``OB_CodeMnemonic``'s pattern decodes to ``^\\\\w{0,4}$`` (the YAML escapes the
  backslash twice): a literal backslash, then ``w``, which no real mnemonic matches.
* ``Links`` and ``Meta`` are never required in 3.1.11, though the prose standard calls
  them mandatory.
* Every Payment Initiation response with a body, errors (400, 403, 500) included,
  requires an ``x-jws-signature`` header, and each of its POSTs requires
  ``x-idempotency-key`` (at most 40 characters) and ``x-jws-signature``.
* Every response requires ``x-fapi-interaction-id`` except a 429 of the accounts and
  funds documents.
* The 401, 404, 405, 406, 415 and 429 responses declare no body, so a body sent with them
  is not checked.
* OpenAPI 3.0 says a header parameter named Authorization "SHALL be ignored", but OBIE
  declares it required on every operation, so it is checked.

Beyond the schemas: a response that declares a JSON body must have one, a request body is
a violation where the operation declares none, and a Content-Type must be one the document
declares (a declared non-JSON one, ``application/jose+jwe``, skips the body).

Each document is loaded once per process (``functools.cache``), and each schema's
validator is compiled once, on first use.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jsonschema_rs
import yaml
from tests.support.paths import REPO

SPEC_DIR = REPO / "specs" / "obie-v3.1.11"
"""The vendored OBIE documents (read from the repository, never from ../shared)."""

SPEC_FILES: Mapping[str, str] = {
    "accounts": "account-info-openapi.yaml",
    "payments": "payment-initiation-openapi.yaml",
    "funds": "confirmation-funds-openapi.yaml",
}
"""Each ``api`` name and the document it selects."""

_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_MAX_PROBLEMS = 20  # a body wrong everywhere is reported by its first problems
_MAX_MESSAGE = 300  # jsonschema-rs quotes whole instances; a huge one is cut short

Pointer = tuple[str, ...]
"""A location in a loaded document, as the keys (strings) from its root."""


class SpecViolation(AssertionError):
    """The traffic disagrees with the OBIE document.

    The message names the operation (method, template and operationId), what was checked
    (request, or response and its status) and each problem, one a line, with the JSON
    path of the offending value (``$.Data.ConsentId``) when it is in the body.
    ``operation`` and ``problems`` carry the same for a test that wants to look closer.
    """

    def __init__(self, message: str, *, operation: str = "", problems: Sequence[str] = ()):
        super().__init__(message)
        self.operation = operation
        self.problems = tuple(problems)


# -- the public API -------------------------------------------------------------------------


def validate_response(
    api: str, method: str, path: str, status: int, headers: Mapping[str, str], body: bytes
) -> str:
    """Check one recorded response against ``api``'s document; return the operationId.

    Raises SpecViolation when the document has no operation for ``method`` and ``path``,
    declares neither ``status`` nor a ``default`` response for it, a header the response
    declares required is missing (or a declared header's value breaks its schema), or the
    response declares a JSON body and ``body`` is empty, is not JSON, or breaks the schema.
    A ``Content-Type`` naming a declared non-JSON type (``application/jose+jwe``) skips the
    body; one the response does not declare is a violation.
    """
    operation = _operation(api, method, path)
    where = f"response {status}"
    response = operation.response(status)
    if response is None:
        documented = ", ".join(operation.statuses())
        raise operation.violation(where, [f"status {status} is not documented ({documented})"])
    problems = [
        *_header_problems(api, headers, _response_headers(operation.spec, response)),
        *_body_problems(api, response, headers, body, required=True),
    ]
    if problems:
        raise operation.violation(where, problems)
    return operation.operation_id


def validate_request(
    api: str, method: str, path: str, headers: Mapping[str, str], body: bytes | None
) -> str:
    """Check one recorded request against ``api``'s document; return the operationId.

    Raises SpecViolation when the document has no operation for ``method`` and ``path``, a
    header parameter it marks ``required: true`` is missing (names compare without case)
    or a declared header's value breaks its schema, or the body disagrees with the
    operation's ``requestBody``: missing while required, present while none is declared,
    not JSON, or breaking the JSON schema.
    """
    operation = _operation(api, method, path)
    spec = operation.spec
    problems: list[str] = list(_header_problems(api, headers, _request_headers(operation)))
    request_body = operation.definition.get("requestBody")
    given = body or b""
    if request_body is None:
        if given.strip():
            problems.append("the operation declares no request body, but one was sent")
    else:
        request_body, pointer = _resolve(
            spec.document, request_body, (*operation.pointer, "requestBody")
        )
        problems.extend(
            _body_problems(
                api,
                _Located(request_body, pointer),
                headers,
                given,
                required=bool(request_body.get("required", False)),
            )
        )
    if problems:
        raise operation.violation("request", problems)
    return operation.operation_id


# -- loading a document ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Route:
    template: str
    segments: tuple[str, ...]  # "{...}" marks a template segment
    item: dict[str, Any]


@dataclass(frozen=True)
class _Spec:
    api: str
    document: dict[str, Any]
    base: str  # the first server URL's path, e.g. /open-banking/v3.1/aisp
    routes: tuple[_Route, ...]


@dataclass(frozen=True)
class _Located:
    """An object of the document and the pointer it was read from (after any $ref)."""

    node: dict[str, Any]
    pointer: Pointer


@functools.cache
def _spec(api: str) -> _Spec:
    if api not in SPEC_FILES:
        raise ValueError(f"unknown api {api!r}; expected one of {sorted(SPEC_FILES)}")
    with (SPEC_DIR / SPEC_FILES[api]).open("rb") as file:
        # YAML reads the unquoted status codes (`201:`) as integers; JSON keys are strings.
        if yaml.__with_libyaml__:  # the C loader reads the 1 MB of YAML ~8x faster
            loaded = yaml.load(file, Loader=yaml.CSafeLoader)
        else:
            loaded = yaml.safe_load(file)
        document = _string_keys(loaded)
    servers = document.get("servers") or [{}]
    base = urlsplit(servers[0].get("url", "")).path.rstrip("/")
    routes = tuple(
        _Route(template, tuple(_segments(template)), item)
        for template, item in document["paths"].items()
    )
    return _Spec(api, document, base, routes)


def _string_keys(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(key): _string_keys(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_string_keys(value) for value in node]
    return node


def _segments(path: str) -> list[str]:
    # Strict: "/accounts/" ends in an empty segment, which no OBIE template has.
    return path.removeprefix("/").split("/")


def _resolve(document: dict[str, Any], node: Any, pointer: Pointer) -> tuple[Any, Pointer]:
    """``node`` (found at ``pointer``) with local ``$ref``s followed."""
    seen: set[str] = set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/") or ref in seen:
            raise ValueError(f"cannot follow $ref {ref!r} at {'/'.join(pointer)}")
        seen.add(ref)
        pointer = tuple(_unescape(part) for part in ref[2:].split("/"))
        node = _at(document, pointer)
    return node, pointer


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


def _at(document: dict[str, Any], pointer: Pointer) -> Any:
    node: Any = document
    for part in pointer:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


# -- finding the operation ------------------------------------------------------------------


@dataclass(frozen=True)
class _Operation:
    spec: _Spec
    method: str
    template: str
    path_item: dict[str, Any]
    definition: dict[str, Any]
    pointer: Pointer

    @property
    def operation_id(self) -> str:
        return str(self.definition.get("operationId") or f"{self.method} {self.template}")

    @property
    def label(self) -> str:
        return f"{self.method} {self.template} ({self.operation_id}) in {self.spec.api}"

    def statuses(self) -> list[str]:
        return list(self.definition.get("responses", {}))

    def response(self, status: int) -> _Located | None:
        responses = self.definition.get("responses", {})
        for key in (str(status), f"{str(status)[0]}XX", f"{str(status)[0]}xx", "default"):
            if key in responses:
                node, pointer = _resolve(
                    self.spec.document, responses[key], (*self.pointer, "responses", key)
                )
                return _Located(node, pointer)
        return None

    def violation(self, where: str, problems: Sequence[str]) -> SpecViolation:
        lines = "\n".join(f"  - {problem}" for problem in problems)
        return SpecViolation(
            f"{self.label}, {where}: does not conform to the OBIE spec:\n{lines}",
            operation=self.label,
            problems=problems,
        )


def _operation(api: str, method: str, path: str) -> _Operation:
    spec = _spec(api)
    method = method.lower()
    concrete = path.split("?", 1)[0].split("#", 1)[0]
    if spec.base and (concrete == spec.base or concrete.startswith(spec.base + "/")):
        concrete = concrete[len(spec.base) :] or "/"
    route = _match(spec.routes, _segments(concrete))
    if route is None:
        raise SpecViolation(
            f"{method.upper()} {path} in {api}: no path of {SPEC_FILES[api]} matches",
            operation=f"{method.upper()} {path}",
            problems=["no such path"],
        )
    if method not in route.item or method not in _METHODS:
        declared = ", ".join(sorted(key.upper() for key in route.item if key in _METHODS))
        raise SpecViolation(
            f"{method.upper()} {path} in {api}: {route.template} has no {method.upper()} "
            f"operation (it has {declared})",
            operation=f"{method.upper()} {route.template}",
            problems=["no such operation"],
        )
    return _Operation(
        spec,
        method.upper(),
        route.template,
        route.item,
        route.item[method],
        ("paths", route.template, method),
    )


def _match(routes: Iterable[_Route], segments: Sequence[str]) -> _Route | None:
    """The route whose template matches ``segments``, a literal segment beating a
    ``{parameter}`` at the first position where two candidates differ."""
    best: tuple[tuple[int, ...], _Route] | None = None
    for route in routes:
        if len(route.segments) != len(segments):
            continue
        rank = []
        for pattern, given in zip(route.segments, segments, strict=True):
            if pattern.startswith("{") and pattern.endswith("}"):
                if not given:
                    break
                rank.append(1)
            elif pattern == given:
                rank.append(0)
            else:
                break
        else:
            if best is None or tuple(rank) < best[0]:
                best = (tuple(rank), route)
    return best[1] if best else None


# -- headers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Header:
    name: str
    required: bool
    schema: _Located | None


def _response_headers(spec: _Spec, response: _Located) -> Iterator[_Header]:
    for name, header in response.node.get("headers", {}).items():
        if name.lower() == "content-type":  # OpenAPI: such a header definition is ignored
            continue
        header, pointer = _resolve(spec.document, header, (*response.pointer, "headers", name))
        yield _Header(name, bool(header.get("required", False)), _schema_of(header, pointer))


def _request_headers(operation: _Operation) -> Iterator[_Header]:
    # Operation-level parameters override path-level ones of the same name and location.
    parameters: dict[tuple[str, str], tuple[dict[str, Any], Pointer]] = {}
    for base, listed in (
        (("paths", operation.template), operation.path_item.get("parameters", [])),
        (operation.pointer, operation.definition.get("parameters", [])),
    ):
        for index, parameter in enumerate(listed):
            node, pointer = _resolve(
                operation.spec.document, parameter, (*base, "parameters", str(index))
            )
            parameters[(node["in"], node["name"].lower())] = (node, pointer)
    for (location, _), (node, pointer) in parameters.items():
        if location == "header":
            yield _Header(node["name"], bool(node.get("required")), _schema_of(node, pointer))


def _schema_of(node: dict[str, Any], pointer: Pointer) -> _Located | None:
    return _Located(node["schema"], (*pointer, "schema")) if "schema" in node else None


def _header_problems(
    api: str, headers: Mapping[str, str], declared: Iterable[_Header]
) -> Iterator[str]:
    given = {name.lower(): value for name, value in headers.items()}
    for header in declared:
        value = given.get(header.name.lower())
        if value is None:
            if header.required:
                yield f"header {header.name}: required by the spec, missing"
            continue
        if header.schema is not None:
            instance = _header_value(_spec(api).document, header.schema, value)
            for problem in _schema_problems(api, header.schema.pointer, instance):
                yield f"header {header.name}: {problem.removeprefix('$: ')}"


def _header_value(document: dict[str, Any], schema: _Located, value: str) -> Any:
    """A header's text as the JSON value its (simple) schema describes."""
    node, _ = _resolve(document, schema.node, schema.pointer)
    kind = node.get("type")
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value  # the schema then reports the wrong type
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    return value


# -- bodies ---------------------------------------------------------------------------------


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def _body_problems(
    api: str,
    owner: _Located,
    headers: Mapping[str, str],
    body: bytes,
    *,
    required: bool,
) -> list[str]:
    """What is wrong with ``body`` for the request body or response object ``owner``."""
    content: dict[str, Any] = owner.node.get("content") or {}
    if not content:
        return []  # nothing declared, nothing checked (see the module docstring)
    declared = {_media_type(key): key for key in content}
    sent = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
    if sent is not None:
        media_type = _media_type(sent)
        if media_type not in declared:
            return [f"Content-Type {sent!r} is not declared ({', '.join(content)})"]
        if not _is_json(media_type):
            return []  # e.g. application/jose+jwe: not JSON, not ours to read
        key = declared[media_type]
    else:
        key = next((declared[media] for media in declared if _is_json(media)), "")
        if not key:
            return []
    if not body.strip():
        return [f"the spec declares a {key} body, but the body is empty"] if required else []
    try:
        instance = json.loads(body)
    except ValueError as error:
        return [f"the body is not JSON ({error})"]
    media = content[key]
    if "schema" not in media:
        return []
    return list(_schema_problems(api, (*owner.pointer, "content", key, "schema"), instance))


# -- JSON Schema ----------------------------------------------------------------------------


def _schema_problems(api: str, pointer: Pointer, instance: Any) -> Iterator[str]:
    for count, error in enumerate(_validator(api, pointer).iter_errors(instance)):
        if count == _MAX_PROBLEMS:
            yield "... (further problems not shown)"
            return
        message = error.message
        if len(message) > _MAX_MESSAGE:
            message = message[: _MAX_MESSAGE - 3] + "..."
        schema_at = "/".join(str(part) for part in error.schema_path)
        yield f"{_json_path(error.instance_path)}: {message} (schema: {schema_at})"


def _json_path(parts: Sequence[str | int]) -> str:
    path = "$"
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            path += f".{part}"
        else:
            path += f"[{json.dumps(part)}]"
    return path


def _resource(api: str) -> str:
    return f"urn:amanat:obie-v3.1.11:{api}"


def _no_retrieval(uri: str) -> Any:
    raise ValueError(f"the OBIE documents refer only to themselves, not to {uri}")


@functools.cache
def _registry(api: str) -> jsonschema_rs.Registry:
    """The document's component schemas, converted, as one JSON Schema resource that every
    validator of ``api`` shares (so each validator compiles in microseconds)."""
    schemas = _spec(api).document.get("components", {}).get("schemas", {})
    converted = {name: _to_json_schema(schema) for name, schema in schemas.items()}
    return jsonschema_rs.Registry(
        [(_resource(api), {"components": {"schemas": converted}})],
        draft=jsonschema_rs.Draft4,
        retriever=_no_retrieval,
    )


@functools.cache
def _validator(api: str, pointer: Pointer) -> jsonschema_rs.Draft4Validator:
    """A Draft 4 validator for the schema at ``pointer``, its ``#/components/...``
    references read in the document's converted components."""
    schema = _to_json_schema(_at(_spec(api).document, pointer), ref_base=_resource(api))
    return jsonschema_rs.Draft4Validator(
        schema, validate_formats=True, registry=_registry(api), retriever=_no_retrieval
    )


_SCHEMA_MAPS = ("properties", "patternProperties", "definitions")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SCHEMA_VALUES = ("items", "additionalProperties", "not", "additionalItems")


def _to_json_schema(schema: Any, ref_base: str = "") -> Any:
    """An OpenAPI 3.0 schema object as Draft 4 JSON Schema (a new object; only
    ``nullable`` changes meaning, other OpenAPI-only keywords are ignored by validators).

    ``ref_base`` is put before each local ``$ref`` ("#/components/...") of a schema read
    from outside the components, so that it points into the shared resource."""
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:  # its siblings are ignored in OpenAPI 3.0, as in Draft 4
        ref = schema["$ref"]
        return {"$ref": ref_base + ref if ref.startswith("#") else ref}

    def convert(sub: Any) -> Any:
        return _to_json_schema(sub, ref_base)

    converted = dict(schema)
    for key in _SCHEMA_MAPS:
        if isinstance(schema.get(key), dict):
            converted[key] = {name: convert(sub) for name, sub in schema[key].items()}
    for key in _SCHEMA_LISTS:
        if isinstance(schema.get(key), list):
            converted[key] = [convert(sub) for sub in schema[key]]
    for key in _SCHEMA_VALUES:
        if isinstance(schema.get(key), dict | list):
            value = schema[key]
            converted[key] = (
                [convert(sub) for sub in value] if isinstance(value, list) else convert(value)
            )
    if converted.pop("nullable", False) is True:
        if "type" in converted:
            kinds = (
                converted["type"] if isinstance(converted["type"], list) else [converted["type"]]
            )
            converted["type"] = [*kinds, "null"]
            if "enum" in converted and None not in converted["enum"]:
                converted["enum"] = [*converted["enum"], None]
        else:
            converted = {"anyOf": [converted, {"type": "null"}]}
    return converted
