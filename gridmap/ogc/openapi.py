"""The service description (``/ogc/api``) as OpenAPI 3.0, which the ``oas30`` conformance class names.

FastAPI writes OpenAPI 3.1 (JSON Schema 2020-12); clients of OGC API Features (GDAL, OWSLib, QGIS) read
3.0. The two differ, for what this API uses, in how a schema says "or null", examples and constants, so
those are rewritten; everything else is the same document the rest of the API publishes.
"""

from __future__ import annotations

import copy
from typing import Any


def _schema30(node: Any) -> Any:
    if isinstance(node, list):
        return [_schema30(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _schema30(v) for k, v in node.items()}
    for key in ("anyOf", "oneOf"):
        options = out.get(key)
        if isinstance(options, list) and any(o == {"type": "null"} for o in options):
            rest = [o for o in options if o != {"type": "null"}]
            del out[key]
            if len(rest) == 1:
                out.update(rest[0])
            elif rest:
                out[key] = rest
            out["nullable"] = True
    if isinstance(out.get("type"), list):
        types = [t for t in out["type"] if t != "null"]
        if len(types) < len(out["type"]):
            out["nullable"] = True
        out["type"] = types[0] if len(types) == 1 else "string"
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if isinstance(out.get("examples"), list) and "properties" not in out.get("examples", {}):
        examples = out.pop("examples")
        if examples:
            out["example"] = examples[0]
    for bound, flag in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), (int, float)) and not isinstance(out.get(bound), bool):
            out[flag] = out.pop(bound)
            out[bound] = True
    return out


def openapi30(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of a FastAPI OpenAPI 3.1 document as OpenAPI 3.0.3."""
    out = copy.deepcopy(document)
    out["openapi"] = "3.0.3"
    if "components" in out and "schemas" in out["components"]:
        out["components"]["schemas"] = _schema30(out["components"]["schemas"])
    for ops in out.get("paths", {}).values():
        for op in ops.values():
            if not isinstance(op, dict):
                continue
            for parameter in op.get("parameters", []):
                if "schema" in parameter:
                    parameter["schema"] = _schema30(parameter["schema"])
            for part in ("requestBody", "responses"):
                if part in op:
                    op[part] = _schema30(op[part])
    return out
