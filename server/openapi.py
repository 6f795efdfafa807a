"""The OpenAPI 3.1 document of ``/api/v1``, made from the routes themselves.

Each package declares its API operations with ``route``: the one call adds the aiohttp route
and its entry in the document, whose schemas are those of the msgspec Structs the handler
decodes its body and query with (``server.validation``) and of the Structs that describe its
answer. A route added otherwise under ``/api/v1`` is missing from the document, which a test
catches. Served at ``/api/v1/openapi.json``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

PREFIX = "/api/v1"
DOC_PATH = f"{PREFIX}/openapi.json"
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
REF = "#/components/schemas/{name}"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ErrorInfo(msgspec.Struct):
    code: str
    message: str
    # Field errors: {"fields": {path: message}}; other errors name ids or states.
    details: dict[str, Any] | None = None


class Error(msgspec.Struct):
    """A catalogued error (``server.errors``)."""

    error: ErrorInfo


@dataclass(frozen=True)
class Operation:
    method: str
    path: str                     # under PREFIX, e.g. "/bookings/{booking_id}"
    operation_id: str
    summary: str
    ok: int = 200
    answer: Any = None            # the Struct (or type) of the answer's body
    body: Any = None              # the Struct of the request body
    body_required: bool = True
    query: Any = None             # the Struct of the query parameters
    errors: tuple[int, ...] = (401, 403)
    media_type: str = "application/json"
    tag: str = ""


OPERATIONS = web.AppKey("api_operations", list[Operation])


def route(app: web.Application, op: Operation, handler: Handler) -> None:
    """Add ``handler`` at ``op``'s method and path, and ``op`` to the document."""
    if OPERATIONS not in app:
        app[OPERATIONS] = []
        app.router.add_get(DOC_PATH, serve, name="openapi")
    app[OPERATIONS].append(op)
    app.router.add_route(op.method, PREFIX + op.path, handler, name=op.operation_id)


def _plain(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional parameter's schema without its null: an absent parameter is the null."""
    options = schema.get("anyOf")
    if options is not None:
        rest = [s for s in options if s != {"type": "null"}]
        if len(rest) == 1:
            return {**rest[0], **{k: v for k, v in schema.items() if k not in ("anyOf",
                                                                              "default")}}
    return schema


def _operation(op: Operation, components: dict[str, Any],
               ref: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary}
    if op.tag:
        out["tags"] = [op.tag]
    # ``…_id`` path parameters are database ids; others (an echo peer's id) are opaque text.
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True,
         "schema": ID_SCHEMA if name.endswith("_id") else {"type": "string", "minLength": 1}}
        for name in re.findall(r"{(\w+)}", op.path)]
    if op.query is not None:
        q = components[op.query.__name__]
        required = set(q.get("required", ()))
        for name, schema in q["properties"].items():
            param: dict[str, Any] = {"name": name, "in": "query", "required": name in required,
                                     "schema": _plain(schema)}
            if "description" in schema:
                param["description"] = schema["description"]
            params.append(param)
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {"required": op.body_required,
                              "content": {"application/json": {"schema": ref(op.body)}}}
    ok: dict[str, Any] = {"description": "OK"}
    if op.answer is not None:
        ok["content"] = {op.media_type: {"schema": ref(op.answer)}}
    out["responses"] = {str(op.ok): ok, **{str(code): {"$ref": "#/components/responses/Error"}
                                          for code in sorted({400, 422, *op.errors})}}
    return out


def document(operations: list[Operation]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``operations``."""
    types = [Error, *{t: None for op in operations
                      for t in (op.answer, op.body, op.query) if t is not None}]
    refs, components = msgspec.json.schema_components(types, ref_template=REF)
    by_type = dict(zip(types, refs, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(
            op, components, lambda t: by_type[t])
    # Query Structs are parameters, not bodies: they need no schema of their own.
    for name in {op.query.__name__ for op in operations if op.query is not None} - {
            getattr(t, "__name__", "") for op in operations for t in (op.answer, op.body)}:
        components.pop(name, None)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Casa API", "version": "1",
                 "description": "Centres, services, slots, patients, bookings and clinical "
                                "notes. Errors are JSON with a stable code and a message; "
                                "field errors are details.fields, {field path: message}."},
        "servers": [{"url": PREFIX}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "casa token create --user EMAIL"},
                "session": {"type": "apiKey", "in": "cookie", "name": "casa_session"}},
            "responses": {"Error": {"description": "A catalogued error", "content": {
                "application/json": {"schema": {"$ref": REF.format(name="Error")}}}}},
            "schemas": components,
        },
    }


async def serve(request: web.Request) -> web.Response:
    return web.json_response(document(request.app[OPERATIONS]))

