"""Structured logging for every amanat process, masked by the one masking policy.

One pipeline serves both kinds of log call:

* ``structlog`` loggers (:func:`get_logger`) run the shared processors (context variables
  such as ``request_id``, level, logger name, UTC ISO timestamp, exception formatting),
  then :func:`mask_event_dict`, then the renderer, and write the line themselves (to the
  handler's stream, under its lock): they never become standard-library records. That
  path runs for every request (the ``http_request`` line), and the standard library's
  record, caller lookup, handler and formatter cost twice as much as all the rest.
* Standard-library records (uvicorn, alembic, SQLAlchemy, anything using ``logging``) reach
  the root logger's handler, whose :class:`structlog.stdlib.ProcessorFormatter` runs the
  same processors on them, masking included.

Masking applies :func:`amanat.kernel.masking.mask_value` to every key except a few
structural ones (``timestamp``, ``level``, ``logger``): secrets under sensitive keys become
``[redacted]``, identifiers under personal keys are partially masked, and every string
(the ``event`` message, a rendered traceback, ``request_id``) goes through
:func:`~amanat.kernel.masking.redact_text`. Values that are not JSON-native (value objects,
bytes, exceptions …) are turned into text first and masked as text, so an ``Iban`` logged
by mistake still shows as ``PK**SCBL************6702``.

Tracebacks are rendered to plain text (never with local variables) and then redacted.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import io
import logging
import os
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any, Final, cast

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from amanat.kernel.ids import MintedId
from amanat.kernel.masking import is_sensitive_key, mask_value, masker_for_key, redact_text

if TYPE_CHECKING:
    from amanat.platform.settings import Settings

__all__ = [
    "STRUCTURAL_KEYS",
    "BoundOnce",
    "configure_logging",
    "configure_logging_from",
    "get_logger",
    "mask_event_dict",
]

STRUCTURAL_KEYS: Final = frozenset(
    {"timestamp", "level", "logger", "exc_info", "stack_info", "_record", "_from_structlog"}
)
"""Event-dict keys whose values we generate ourselves and pass through unmasked."""

_STDLIB_LOGGERS_TO_ROUTE: Final = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "uvicorn.asgi",
    "alembic",
    "sqlalchemy",
)
"""Loggers that might carry their own handlers; they are emptied and made to propagate."""

_HANDLER_FLAG: Final = "_amanat_handler"
_MAX_DEPTH: Final = 24


def _loggable(value: object, depth: int = 0) -> object:
    """``value`` as JSON-native data, anything else as text (masked next, by the caller)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if depth > _MAX_DEPTH:
        return "[truncated]"
    if isinstance(value, Mapping):
        return {
            key if isinstance(key, str) else str(key): _loggable(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_loggable(item, depth + 1) for item in value]
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break logging
        return f"[unprintable {type(value).__name__}]"


_MEMO_MAX_LENGTH: Final = 200


@functools.lru_cache(maxsize=4096)
def _masked_text(key: str, text: str) -> object:
    """``mask_value`` of a short string, remembered: a pure function of its arguments, and
    most log values (event names, methods, paths without ids) repeat on every line, while
    scanning one for every shape of secret and identifier takes a dozen regular
    expressions."""
    return mask_value(key, text)


@functools.lru_cache(maxsize=1024)
def _plain_key(key: str) -> bool:
    """Whether values under ``key`` are masked by their shape alone. Only such values are
    remembered: a secret or an identifier under its own key is masked whatever it is, and
    cheaply, so it is never kept in the memo."""
    return not is_sensitive_key(key) and masker_for_key(key) is None


def mask_event_dict(_logger: WrappedLogger, _method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: apply the masking policy to every non-structural key."""
    for key, value in list(event_dict.items()):
        if key in STRUCTURAL_KEYS:
            continue
        if isinstance(key, str) and _plain_key(key):
            kind = type(value)
            # Under a plain key, numbers, None and ids minted here pass unchanged (integers
            # are never masked by shape), and a string is masked by its shape alone,
            # remembered.
            if value is None or kind is int or kind is float or kind is bool or kind is MintedId:
                continue
            if kind is str and len(value) <= _MEMO_MAX_LENGTH:
                event_dict[key] = _masked_text(key, value)
                continue
        event_dict[key] = mask_value(key, _loggable(value))
    return event_dict


def _finish_foreign(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Format and mask a standard-library record."""
    event_dict = structlog.processors.format_exc_info(logger, method_name, event_dict)
    return mask_event_dict(logger, method_name, event_dict)


def _drop_record_keys(
    _logger: WrappedLogger, _method_name: str, event_dict: EventDict
) -> EventDict:
    """``_record`` and ``_from_structlog`` mean a standard-library record to the formatter,
    and masking passes them unread; from a structlog call they are only a caller's values,
    so they are dropped before anything reads them."""
    event_dict.pop("_record", None)
    event_dict.pop("_from_structlog", None)
    return event_dict


_LEADING_KEYS: Final = ("timestamp", "level", "logger", "event", "request_id")


def _leading_keys_first(
    _logger: WrappedLogger, _method_name: str, event_dict: EventDict
) -> EventDict:
    """Put timestamp, level, logger, event and request_id first: easier to read in JSON."""
    ordered = {key: event_dict.pop(key) for key in _LEADING_KEYS if key in event_dict}
    ordered.update(event_dict)
    return ordered


class _UtcStamper:
    """``timestamp`` as structlog's ISO UTC stamper writes it (``2026-12-05T12:21:21.270809Z``,
    microseconds always shown), with the date and time up to the second formatted once per
    second: ``datetime.now().isoformat()`` on every line was a tenth of the line's cost."""

    __slots__ = ("_second_and_prefix",)

    def __init__(self) -> None:
        # One attribute, replaced whole: threads stamping at once never pair a second with
        # another second's text.
        self._second_and_prefix = (-1, "")

    def __call__(
        self, _logger: WrappedLogger, _method_name: str, event_dict: EventDict
    ) -> EventDict:
        now = time.time()
        second = int(now)
        cached_second, prefix = self._second_and_prefix
        if second != cached_second:
            prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
            self._second_and_prefix = (second, prefix)
        event_dict["timestamp"] = f"{prefix}{int((now - second) * 1_000_000):06d}Z"
        return event_dict


def _dumps(obj: Any, **kwargs: Any) -> str:
    default = kwargs.get("default")
    return orjson.dumps(obj, default=default, option=orjson.OPT_NON_STR_KEYS).decode("utf-8")


_MAX_PENDING_LINES: Final = 256


class _StreamHandler(logging.Handler):
    """Writes formatted records to ``stream``, or to whatever ``sys.stderr`` is *now*.

    Looking ``sys.stderr`` up on every record (instead of once, at configuration) keeps
    pytest's ``capsys``/``capfd`` working and never writes to a stream pytest has closed.

    A server process (:func:`batch_lines_per_loop_turn`) writes the lines its event loop
    logs once per turn of the loop, together: a write and a flush per line was a system
    call per request, a third of the request log line's cost. A line waits at most until
    the loop's next turn (or the 256th line); lines from other threads and standard-library
    records are written at once, after the waiting ones, so the order holds. A process
    killed outright loses at most the lines of the turn it was killed in.
    """

    def __init__(self, stream: IO[str] | None) -> None:
        super().__init__()
        self._stream = stream
        self._pending: list[str] = []
        self._batching = False
        # The loop a flush is scheduled on; None once the waiting lines are written, so a
        # flush lost with its loop (stopped, closed) never leaves lines waiting.
        self._flush_loop: asyncio.AbstractEventLoop | None = None
        setattr(self, _HANDLER_FLAG, True)

    @property
    def target(self) -> IO[str]:
        return self._stream if self._stream is not None else sys.stderr

    def batch_lines_per_loop_turn(self) -> None:
        if not self._batching:
            self._batching = True
            atexit.register(self.flush_pending)
            # A forked child would write its parent's waiting lines a second time.
            os.register_at_fork(after_in_child=self._pending.clear)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            with self.lock or contextlib.nullcontext():
                self._write_pending()
                stream = self.target
                stream.write(line + "\n")
                stream.flush()
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - reported by handleError, without the record
            self.handleError(record)

    def write_line(self, line: str) -> None:
        """A line structlog rendered: written now, or (batching, on an event loop) at the
        loop's next turn with the others of this turn."""
        try:
            with self.lock or contextlib.nullcontext():
                if self._batching:
                    try:
                        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
                    except RuntimeError:
                        loop = None
                    if loop is not None:
                        self._pending.append(line)
                        if len(self._pending) >= _MAX_PENDING_LINES:
                            self._write_pending()
                        elif self._flush_loop is not loop:
                            loop.call_soon(self.flush_pending)
                            self._flush_loop = loop
                        return
                self._write_pending()
                self._write_rendered(line + "\n")
        except RecursionError:
            raise
        except Exception as error:  # noqa: BLE001 - a broken stream must not break the caller
            self._report_write_error(error)

    def flush_pending(self) -> None:
        """Write the lines that wait for the loop's turn (also at exit, and on close)."""
        try:
            with self.lock or contextlib.nullcontext():
                self._write_pending()
        except Exception as error:  # noqa: BLE001 - a broken stream must not break the loop
            self._report_write_error(error)

    def close(self) -> None:
        self.flush_pending()
        super().close()

    def _write_pending(self) -> None:
        self._flush_loop = None
        if self._pending:
            text = "\n".join(self._pending) + "\n"
            self._pending.clear()
            self._write_rendered(text)

    def _write_rendered(self, text: str) -> None:
        target = self.target
        stream = target.passthrough() if isinstance(target, JsonStderr) else target
        stream.write(text)
        stream.flush()

    @staticmethod
    def _report_write_error(error: Exception) -> None:
        with contextlib.suppress(Exception):
            sys.__stderr__.write(f"--- logging error: {type(error).__name__} ---\n")  # type: ignore[union-attr]

    def handleError(self, record: logging.LogRecord) -> None:
        # logging's default prints the record's message and arguments, unmasked. Say only
        # that something went wrong and where.
        if not logging.raiseExceptions:
            return
        error = sys.exc_info()[1]
        name = type(error).__name__ if error is not None else "error"
        with contextlib.suppress(Exception):
            sys.stderr.write(
                f"--- logging error: {name} while formatting a record from "
                f"{record.name} ({record.pathname}:{record.lineno}) ---\n"
            )


class _LineLogger:
    """structlog's last step: the rendered line, written to the root handler's stream."""

    __slots__ = ("_handler", "name")

    def __init__(self, name: str, handler: _StreamHandler) -> None:
        self.name = name
        self._handler = handler

    def msg(self, line: str) -> None:
        self._handler.write_line(line)

    debug = info = warning = warn = error = err = critical = exception = fatal = log = msg


class _LineLoggerFactory:
    """Names loggers as structlog's standard-library factory does (the given name, else
    the calling module's), and writes their lines through ``handler``."""

    def __init__(self, handler: _StreamHandler) -> None:
        self._handler = handler
        self._names = structlog.stdlib.LoggerFactory(ignore_frame_names=[__name__])

    def __call__(self, *args: Any) -> _LineLogger:
        return _LineLogger(self._names(*args).name, self._handler)


def _isatty(stream: IO[str] | None) -> bool:
    target = stream if stream is not None else sys.stderr
    try:
        return bool(target.isatty())
    except (AttributeError, ValueError):
        return False


def configure_logging(
    *,
    json: bool,
    level: str = "INFO",
    stream: IO[str] | None = None,
    batch_lines: bool = False,
) -> None:
    """Route structlog and standard-library logging through one masked pipeline.

    ``json`` picks one JSON object per line (production, log shippers) or the human console
    format (colours only on a terminal). ``level`` is a standard level name. Output goes to
    ``stream``, by default the current ``sys.stderr``. ``batch_lines`` (server processes)
    writes an event loop's lines once per turn of the loop (see :class:`_StreamHandler`).

    Safe to call more than once: each call replaces the handler the previous call
    installed and leaves every other root handler (pytest's ``caplog``, for one) alone.
    """
    level_number = logging.getLevelNamesMapping().get(level.strip().upper())
    if level_number is None:
        raise ValueError(f"Unknown log level {level!r}.")

    timestamper = _UtcStamper()
    pre_chain: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        timestamper,
    ]

    renderers: list[Processor]
    if json:
        renderers = [_leading_keys_first, structlog.processors.JSONRenderer(serializer=_dumps)]
    else:
        renderers = [
            structlog.dev.ConsoleRenderer(
                colors=_isatty(stream), exception_formatter=structlog.dev.plain_traceback
            )
        ]

    handler = _StreamHandler(stream)
    if batch_lines:
        handler.batch_lines_per_loop_turn()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=pre_chain,
            processors=[
                _finish_foreign,
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *renderers,
            ],
        )
    )
    processors: list[Processor] = [
        _drop_record_keys,
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        timestamper,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        mask_event_dict,
        *renderers,
    ]
    factory = _LineLoggerFactory(handler)
    wrapper_class = structlog.make_filtering_bound_logger(level_number)
    structlog.configure(
        processors=processors,
        logger_factory=factory,
        wrapper_class=wrapper_class,
        # Not cached: module-level loggers then follow a later configure_logging() call,
        # and structlog.testing.capture_logs() keeps working in tests.
        cache_logger_on_first_use=False,
    )

    global _request_lines
    _request_lines = (
        _RequestLines(processors, factory, handler, timestamper, level_number, wrapper_class)
        if json
        else None
    )

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_FLAG, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level_number)

    for name in _STDLIB_LOGGERS_TO_ROUTE:
        stdlib_logger = logging.getLogger(name)
        for old in list(stdlib_logger.handlers):
            stdlib_logger.removeHandler(old)
        stdlib_logger.propagate = True


def configure_logging_from(settings: Settings, *, batch_lines: bool = False) -> bool:
    """:func:`configure_logging` as the settings ask; every process amanat starts calls it.

    A process that never calls it (a uvicorn worker process, say) would log through
    structlog's default console renderer: not JSON, no level filter, and nothing masked.
    JSON is on when ``AMANAT_OBSERVABILITY__LOG_JSON`` says so, or (unset) in production
    or when stderr is not a terminal. Returns whether the lines are JSON.
    """
    as_json = settings.observability.log_json
    if as_json is None:
        as_json = settings.is_production or not _isatty(None)
    configure_logging(json=as_json, level=settings.observability.log_level, batch_lines=batch_lines)
    # Alembic announces its plugins and context at INFO on every readiness check.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # amanat's own `http_request` line is the request log (request id, masked path,
    # status, duration); uvicorn's access line would repeat it with the raw, percent-
    # encoded target, which the masking cannot always read. `amanat serve` turns it off
    # (access_log=False) before the app factory runs this, so keep it off.
    logging.getLogger("uvicorn.access").propagate = False
    return as_json


class JsonStderr(io.TextIOBase):
    """``sys.stderr`` of a server process that logs JSON: lines that are already JSON (the
    log pipeline's own) pass through; any other text written straight to stderr (a worker
    process's crash traceback, a library's print) becomes one masked JSON record per line,
    so the output stays machine-readable and nothing leaves unmasked."""

    def __init__(self, original: IO[str]) -> None:
        super().__init__()
        self._original = original
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._emit(line)
        return len(text)

    def flush(self) -> None:
        self._original.flush()

    def passthrough(self) -> IO[str] | JsonStderr:
        """Where a line already rendered as JSON may go directly: the original stream,
        unless part of a line written here still waits for its end."""
        return self if self._pending else self._original

    def isatty(self) -> bool:
        return False

    def _emit(self, line: str) -> None:
        if not line.strip():
            return
        if line.startswith("{"):
            self._original.write(line + "\n")
            return
        record = {
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "level": "error",
            "logger": "stderr",
            "event": redact_text(line),
        }
        self._original.write(_dumps(record) + "\n")


def route_stderr_as_json() -> None:
    """Install :class:`JsonStderr` once in this process (server worker processes)."""
    if not isinstance(sys.stderr, JsonStderr):
        sys.stderr = JsonStderr(sys.stderr)


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structlog logger; ``name`` defaults to the calling module's name."""
    logger = structlog.get_logger(name) if name is not None else structlog.get_logger()
    return cast(structlog.stdlib.BoundLogger, logger)


class BoundOnce:
    """A structlog logger for a hot path, bound once per structlog configuration.

    ``structlog.get_logger()`` answers a proxy that builds a new bound logger on every
    call (loggers are deliberately not cached, so they follow :func:`configure_logging`
    and ``structlog.testing.capture_logs``); that costs about 15 us a line. This keeps the
    bound logger until the configuration changes (``structlog.configure`` replaces the
    objects compared here), so it follows both just the same.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._bound_for: tuple[object, ...] = ()
        self._logger: Any = None

    def get(self) -> Any:
        config = structlog.get_config()
        current = (
            config["processors"],
            config["logger_factory"],
            config["wrapper_class"],
            config["context_class"],
        )
        if len(current) != len(self._bound_for) or any(
            now is not then for now, then in zip(current, self._bound_for, strict=True)
        ):
            self._logger = structlog.get_logger(self._name).bind()
            self._bound_for = current
        return self._logger


class _RequestLines:
    """What :func:`log_request` needs to write the request line itself, for the JSON
    configuration it was made with."""

    __slots__ = (
        "as_made",
        "factory",
        "handler",
        "level",
        "processors",
        "stamper",
        "wrapper_class",
    )

    def __init__(
        self,
        processors: list[Processor],
        factory: _LineLoggerFactory,
        handler: _StreamHandler,
        stamper: _UtcStamper,
        level: int,
        wrapper_class: Any,
    ) -> None:
        self.wrapper_class = wrapper_class
        self.processors = processors
        # structlog.testing.capture_logs() changes the configured list in place.
        self.as_made = list(processors)
        self.factory = factory
        self.handler = handler
        self.stamper = stamper
        self.level = level


_request_lines: _RequestLines | None = None
_REQUEST_LOGGER: Final = "amanat.http"
_request_log = BoundOnce(_REQUEST_LOGGER)


def log_request(method: str | None, path: str, status: int | None, duration_ms: float) -> None:
    """The ``http_request`` line of one request, exactly as ``structlog`` would write it.

    Written once per request, the line went through structlog's bound logger and its ten
    processors: about 20 us of a request's CPU. While the JSON configuration that
    :func:`configure_logging` made is in force (the same processors, unchanged, and logger
    factory: not under ``structlog.testing.capture_logs`` or anyone's own configuration), this
    builds the same event (context variables included), masks it with
    :func:`mask_event_dict`, and renders it in the same key order; otherwise it logs
    through structlog.
    """
    lines = _request_lines
    config = structlog.get_config()
    processors = config["processors"]
    if (
        lines is None
        or processors is not lines.processors
        or processors != lines.as_made
        or config["logger_factory"] is not lines.factory
        or config["wrapper_class"] is not lines.wrapper_class
    ):
        _log_request_through_structlog(method, path, status, duration_ms)
        return
    if lines.level > logging.INFO:
        return
    context = structlog.contextvars.get_contextvars()
    if not STRUCTURAL_KEYS.isdisjoint(context):
        # exc_info, stack_info...: structlog's processors give them their meaning.
        _log_request_through_structlog(method, path, status, duration_ms)
        return
    event: EventDict = {"method": method, "path": path, "status": status}
    event["duration_ms"] = duration_ms
    event["event"] = "http_request"
    for key, value in context.items():
        event.setdefault(key, value)
    event["logger"] = _REQUEST_LOGGER
    event["level"] = "info"
    lines.stamper(None, "info", event)
    event = _leading_keys_first(None, "info", mask_event_dict(None, "info", event))
    try:
        line = _dumps(event)
    except TypeError:  # a value orjson cannot write: structlog's renderer knows what to do
        _log_request_through_structlog(method, path, status, duration_ms)
        return
    lines.handler.write_line(line)


def _log_request_through_structlog(
    method: str | None, path: str, status: int | None, duration_ms: float
) -> None:
    _request_log.get().info(
        "http_request", method=method, path=path, status=status, duration_ms=duration_ms
    )
