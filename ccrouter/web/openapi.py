"""The OpenAPI 3.1 document, built from the same endpoint table that makes the routes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ccrouter.web.api import SCOPE_TEXT, TOKEN_QUERY, Endpoint

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: Any) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


_REF = "#/components/schemas/{model}"


def _schema(model: Any, defs: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = model.model_json_schema(by_alias=True, ref_template=_REF)
    defs.update(schema.pop("$defs", {}))
    return schema


def _parameters(ep: Endpoint, defs: dict[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "description": desc,
         "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,80}$"}}
        for name, desc in ep.path_params.items()
    ]
    if ep.query is not None:
        schema = _schema(ep.query, defs)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            prop = dict(prop)
            desc = prop.pop("description", None)
            prop.pop("title", None)
            p: dict[str, Any] = {"name": name, "in": "query", "required": name in required,
                                 "schema": prop}
            if desc:
                p["description"] = desc
            params.append(p)
    if ep.stream:
        params.append({"name": TOKEN_QUERY, "in": "query", "required": False,
                       "description": "the token, for clients that cannot set a header "
                       "(EventSource)", "schema": {"type": "string"}})
    return params


def _operation(ep: Endpoint, defs: dict[str, Any]) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "OK"}
    if ep.stream:
        ok["content"] = {"text/event-stream": {"schema": {"type": "string"}}}
    else:
        ok["content"] = _json({})
        if ep.csv:
            ok["content"]["text/csv"] = {"schema": {"type": "string"}}
    op: dict[str, Any] = {
        "summary": ep.summary,
        "operationId": f"{ep.method.lower()}_{ep.path.strip('/').replace('/', '_')}"
        .replace("{", "").replace("}", ""),
        "x-roles": sorted(r.value for r in ep.roles),
        "x-scope": {"kind": ep.scoping.value, "description": SCOPE_TEXT[ep.scoping]},
        "description": f"Roles: {', '.join(sorted(r.value for r in ep.roles))}. "
        f"Scope: {SCOPE_TEXT[ep.scoping]}.",
        "responses": {
            "200": ok,
            "400": {"description": "Bad input: `field` names it", "content": _json(_ERROR)},
            "401": {"description": "No or invalid token", "content": _json(_ERROR)},
            "403": {"description": "Role not allowed, or outside the token's scope",
                    "content": _json(_ERROR)},
            "404": {"description": "Not found", "content": _json(_ERROR)},
        },
    }
    params = _parameters(ep, defs)
    if params:
        op["parameters"] = params
    if ep.body is not None:
        op["requestBody"] = {"required": True,
                             "content": _json(_schema(ep.body, defs))}
    return op


def document(endpoints: Sequence[Endpoint], public: Sequence[tuple[str, str, str]]) -> Any:
    """`public`: (method, path, summary) of the routes that need no token."""
    paths: dict[str, dict[str, Any]] = {}
    defs: dict[str, Any] = {}
    for ep in endpoints:
        paths.setdefault(ep.path, {})[ep.method.lower()] = _operation(ep, defs)
    for method, path, summary in public:
        paths.setdefault(path, {})[method.lower()] = {
            "summary": summary, "security": [],
            "responses": {"200": {"description": "OK"}},
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "ccrouter API", "version": "1"},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {**defs, "Error": {"type": "object", "required": ["error", "message"],
                                  "properties": {"error": {"type": "string"},
                                                 "message": {"type": "string"},
                                                 "field": {"type": "string"}}}},
        },
    }
