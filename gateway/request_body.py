"""Reading and validating a JSON request body in one pass, and describing it in the OpenAPI document.

Routes take the raw ``Request`` and validate with ``model_validate_json`` (pydantic parses the bytes
itself): faster than FastAPI's body parameters, and every failure becomes OpenAI's 400 with ``param``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from core.errors import InvalidRequestError
from gateway.errors import from_validation_error

ModelT = TypeVar("ModelT", bound=BaseModel)

REF_TEMPLATE = "#/components/schemas/{model}"
# pydantic's JSON parser stops at this depth of nested arrays and objects (its recursion limit).
MAX_JSON_DEPTH = 200


async def parse_body(request: Request, model: type[ModelT]) -> ModelT:
    body = await request.body()
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        if _too_deep(exc):
            raise InvalidRequestError(
                f"The JSON body is nested too deep (the limit is about {MAX_JSON_DEPTH} levels of "
                "arrays and objects).",
                code="invalid_json",
            ) from None
        raise from_validation_error(exc) from None


def _too_deep(exc: ValidationError) -> bool:
    errors = exc.errors()
    return bool(errors) and errors[0]["type"] == "json_invalid" and "recursion limit" in errors[0]["msg"]


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a route whose body is ``model`` (its $defs are merged by ``app.openapi``)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": REF_TEMPLATE.format(model=model.__name__)}}},
        }
    }


def component_schemas(models: list[type[BaseModel]]) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=REF_TEMPLATE)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas
