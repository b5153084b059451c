"""One problem found in a data package: which layer, which feature, what is wrong (in Chinese)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    severity: Severity
    layer: str
    code: str | None
    message: str
    field: str | None = None
    extra: dict[str, Any] = dataclass_field(default_factory=dict)

    @classmethod
    def error(cls, layer: str, code: str | None, message: str, **kw: Any) -> Problem:
        return cls("error", layer, code, message, **kw)

    @classmethod
    def warning(cls, layer: str, code: str | None, message: str, **kw: Any) -> Problem:
        return cls("warning", layer, code, message, **kw)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(out.pop("extra"))
        return out

    def __str__(self) -> str:
        where = f"{self.layer}/{self.code}" if self.code else self.layer
        return f"[{'错误' if self.severity == 'error' else '警告'}] {where}: {self.message}"
