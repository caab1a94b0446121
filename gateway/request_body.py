"""Reading and validating a JSON request body in one pass, and describing it in the OpenAPI document.

Routes take the raw ``Request`` and validate with ``model_validate_json`` (pydantic parses the bytes
itself): faster than FastAPI's body parameters, and every failure becomes OpenAI's 400 with ``param``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from gateway.errors import from_validation_error

ModelT = TypeVar("ModelT", bound=BaseModel)

REF_TEMPLATE = "#/components/schemas/{model}"


async def parse_body(request: Request, model: type[ModelT]) -> ModelT:
    body = await request.body()
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise from_validation_error(exc) from None


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
