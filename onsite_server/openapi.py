"""A small OpenAPI 3.1 generator fed by the same pydantic models the views validate with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

REF = "#/components/schemas/{model}"


@dataclass
class Operation:
    """One documented endpoint."""

    path: str
    method: str
    operation_id: str
    summary: str
    tags: list[str]
    request_model: type[BaseModel] | None
    query_model: type[BaseModel] | None
    responses: dict[int, tuple[str, type[BaseModel] | None]]
    auth: bool
    headers: dict[str, str] = field(default_factory=dict)


class OpenAPIRegistry:
    """Collects operations and renders the OpenAPI document."""

    def __init__(self, title: str, version: str, description: str = "") -> None:
        self.title = title
        self.version = version
        self.description = description
        self.operations: list[Operation] = []
        self.extra_models: list[type[BaseModel]] = []

    def add(self, op: Operation) -> None:
        """Register an operation."""
        self.operations.append(op)

    def document(self, server_url: str = "/api/v1") -> dict[str, Any]:
        """Return the OpenAPI 3.1 document as a dict."""
        models: list[type[BaseModel]] = list(self.extra_models)
        for op in self.operations:
            if op.request_model:
                models.append(op.request_model)
            for _desc, model in op.responses.values():
                if model:
                    models.append(model)
        unique = list(dict.fromkeys(models))
        _, top = models_json_schema(
            [(m, "validation") for m in unique], ref_template=REF
        )
        schemas: dict[str, Any] = dict(top.get("$defs", {}))
        paths: dict[str, Any] = {}
        for op in self.operations:
            paths.setdefault(_openapi_path(op.path), {})[op.method.lower()] = self._op(op)
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": self.version,
                     "description": self.description},
            "servers": [{"url": server_url}],
            "paths": paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {
                    "kioskToken": {"type": "http", "scheme": "bearer",
                                   "description": "Device token from POST /pair"}
                },
            },
        }

    def _op(self, op: Operation) -> dict[str, Any]:
        out: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": op.tags,
            "responses": {},
        }
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_params(op.path)
        ]
        if op.query_model is not None:
            qschema = op.query_model.model_json_schema(ref_template=REF)
            required = set(qschema.get("required", []))
            for name, prop in qschema.get("properties", {}).items():
                params.append({"name": name, "in": "query", "required": name in required,
                               "schema": prop})
        for name, desc in op.headers.items():
            params.append({"name": name, "in": "header", "required": False,
                           "description": desc, "schema": {"type": "string"}})
        if params:
            out["parameters"] = params
        if op.request_model is not None:
            out["requestBody"] = {
                "required": True,
                "content": {"application/json": {
                    "schema": {"$ref": REF.format(model=op.request_model.__name__)}}},
            }
        if op.auth:
            out["security"] = [{"kioskToken": []}]
        for status, (desc, model) in sorted(op.responses.items()):
            entry: dict[str, Any] = {"description": desc}
            if model is not None:
                media = "application/problem+json" if status >= 400 else "application/json"
                entry["content"] = {media: {"schema": {"$ref": REF.format(model=model.__name__)}}}
            out["responses"][str(status)] = entry
        return out


def _openapi_path(flask_rule: str) -> str:
    parts = []
    for seg in flask_rule.split("/"):
        if seg.startswith("<") and seg.endswith(">"):
            seg = "{" + seg[1:-1].split(":")[-1] + "}"
        parts.append(seg)
    return "/".join(parts)


def _path_params(flask_rule: str) -> list[str]:
    return [seg[1:-1].split(":")[-1] for seg in flask_rule.split("/")
            if seg.startswith("<") and seg.endswith(">")]
