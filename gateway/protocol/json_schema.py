"""A shape check of the JSON Schemas a request carries (tool ``parameters``, ``response_format`` schemas).

Not a full meta-schema validation (``jsonschema`` is a test-only dependency): it refuses what OpenAI
refuses most often and what would make an engine fail later, a keyword of the wrong type
(``{"type": 12}``, ``"required": "a"``, ``"properties": []``), with the path to the offending keyword.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
# Keywords whose value is one schema, a list of schemas, or a map of name -> schema.
ONE_SCHEMA = ("items", "not", "if", "then", "else", "contains", "propertyNames", "additionalItems")
SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")
STRINGS = ("description", "title", "$ref", "pattern", "format", "$schema", "$id")
COUNTS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
NUMBERS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


class SchemaShapeError(ValueError):
    """``path``: where in the schema (``properties.city.type``); the message says what is wrong."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_type(value: Any, path: str) -> None:
    names = value if isinstance(value, list) else [value]
    if not names or not all(isinstance(name, str) and name in TYPES for name in names):
        raise SchemaShapeError(
            f"{path}: {value!r} is not a JSON Schema type (one of {', '.join(sorted(TYPES))}, or a list)"
        )


def _check_keywords(schema: Mapping[str, Any], path: str, depth: int) -> None:
    if "type" in schema:
        _check_type(schema["type"], f"{path}type")
    for key in ONE_SCHEMA:
        if key in schema and not (key == "items" and isinstance(schema[key], bool)):
            check_schema_shape(schema[key], f"{path}{key}", depth + 1)
    for key in SCHEMA_LISTS:
        if key in schema:
            items = schema[key]
            if not isinstance(items, list) or not items:
                raise SchemaShapeError(f"{path}{key}: must be a non-empty list of schemas")
            for index, item in enumerate(items):
                check_schema_shape(item, f"{path}{key}[{index}]", depth + 1)
    for key in SCHEMA_MAPS:
        if key in schema:
            members = schema[key]
            if not isinstance(members, dict):
                raise SchemaShapeError(f"{path}{key}: must be an object of schemas")
            for name, member in members.items():
                check_schema_shape(member, f"{path}{key}.{name}", depth + 1)
    extra = schema.get("additionalProperties")
    if extra is not None and not isinstance(extra, bool):
        check_schema_shape(extra, f"{path}additionalProperties", depth + 1)
    required = schema.get("required")
    if required is not None and not (
        isinstance(required, list) and all(isinstance(r, str) for r in required)
    ):
        raise SchemaShapeError(f"{path}required: must be a list of property names")
    if "enum" in schema and not isinstance(schema["enum"], list):
        raise SchemaShapeError(f"{path}enum: must be a list")
    for key in STRINGS:
        if key in schema and not isinstance(schema[key], str):
            raise SchemaShapeError(f"{path}{key}: must be a string")
    for key in COUNTS:
        value = schema.get(key)
        if key in schema and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            raise SchemaShapeError(f"{path}{key}: must be a non-negative integer")
    for key in NUMBERS:
        if key in schema and not _is_number(schema[key]):
            raise SchemaShapeError(f"{path}{key}: must be a number")


def check_schema_shape(schema: Any, path: str = "", depth: int = 0) -> None:
    """Raises SchemaShapeError when ``schema`` is not shaped like a JSON Schema (an object or a bool)."""
    where = path or "schema"
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise SchemaShapeError(
            f"{where}: a schema must be an object or a boolean, not {type(schema).__name__}"
        )
    if depth > 64:
        raise SchemaShapeError(f"{where}: the schema is nested too deep")
    _check_keywords(schema, f"{path}." if path else "", depth)


def check_object_schema(schema: Mapping[str, Any]) -> None:
    """A schema for a JSON object (what tool parameters and response formats describe)."""
    check_schema_shape(dict(schema))
    kind = schema.get("type", "object")
    if kind != "object":
        raise SchemaShapeError(f"the schema must have type 'object', got {kind!r}")
