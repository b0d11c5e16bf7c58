"""The `<id:…>` path converter: ids the database cannot hold do not match, so they answer 404."""

from __future__ import annotations

from typing import Any

from werkzeug.routing import IntegerConverter, Map

from tenants.types import MAX_ID


class IdConverter(IntegerConverter):
    """A row id in a path: 1 to 2^31−1 written in ASCII digits; anything else is no such row."""

    regex = r"[0-9]{1,10}"

    def __init__(self, url_map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)


def id_parameter(_converter: IdConverter) -> dict[str, Any]:
    """How OpenAPI documents an `<id:…>` path parameter."""
    return {"type": "integer", "minimum": 1, "maximum": MAX_ID}
