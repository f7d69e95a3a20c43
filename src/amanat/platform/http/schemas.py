"""Shared request/response building blocks for the partner API."""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class RequestModel(BaseModel):
    """Every request body: unknown fields are refused, not silently dropped, and values
    keep their JSON type: ``true``, ``"1500"`` or ``1500.0`` is never read as an integer.

    Strict mode is safe here because FastAPI validates the parsed JSON (Python mode) and no
    request model has a field that legitimately parses from a JSON string (datetimes are
    taken as ``str`` and parsed by the route, choices are ``Literal``); a test walks every
    request model to keep it that way.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ListResponse(BaseModel, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
    has_more: bool
    next_cursor: str | None = Field(
        description="Pass as `cursor` to fetch the next page; null on the last page."
    )
