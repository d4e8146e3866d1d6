"""One conversion per kind of value in Spotler's JSON, for both ways the client reads a page.

The typed records (:mod:`~spotler_pipeline.client.models`, the ``iter_*``/``list_*``/``get_*``
methods) and the Arrow batches (:mod:`~spotler_pipeline.client.columnar`, the ``*_batches``
methods) call these same functions, so the same JSON gives the same value on either path.
(Timestamps have theirs in :mod:`~spotler_pipeline.client.timestamps`.)

Tolerance, as the API notes ask: ``null`` (and an empty string where a number or flag
belongs) is ``None``; ids that arrive as JSON numbers become text. A value of the wrong kind
altogether (an object where a count belongs) raises ``ValueError``/``TypeError``, which the
client reports as an unusable body (``SpotlerResponseError`` once retries are spent).
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["boolean", "integer", "text"]


def text(value: Any) -> str | None:
    """Text as is. A number or boolean as its JSON text, a whole float without ``.0``
    (``1.0`` -> ``"1"``: an id sent as ``1.0`` is the id ``1``). An object or array, where
    text belongs, as compact JSON text: kept, not dropped."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return orjson.dumps(value).decode()


def integer(value: Any) -> int | None:
    """A whole number: a JSON integer, a float without a fraction, or digits in a string."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TypeError("expected a number, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"expected a whole number, got {value!r}")
        return int(value)
    if isinstance(value, str):
        return int(value.strip())
    raise TypeError(f"expected a number, got {type(value).__name__}")


def boolean(value: Any) -> bool | None:
    """``true``/``false``, also as ``0``/``1`` or the strings ``"true"``/``"false"``."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"expected a boolean, got {value!r}")
