"""Response schemas, for the OpenAPI document and for clients; answers are built as plain dicts."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Ref(BaseModel):
    code: str
    name: str


class Worker(BaseModel):
    code: str
    name: str
    role: str
    phone: str


class StationRef(Ref):
    distance_m: float


class Precinct(Ref):
    phone: str


class NearestGrid(Ref):
    distance_m: float


class MatchCandidate(BaseModel):
    level: str
    score: float
    address: str | None
    building: Ref | None
    community_code: str | None
    grid_code: str | None


class Match(BaseModel):
    level: str
    score: float
    address: str | None
    building: Ref | None
    parsed: dict[str, str | None]
    candidates: list[MatchCandidate]
    ambiguous: bool


class BoundaryVersionRef(BaseModel):
    id: int
    effective_from: str
    label: str
    created_at: str
    counts: dict[str, int]


class LookupAnswer(BaseModel):
    covered: bool
    lon: float | None
    lat: float | None
    county: Ref | None
    town: Ref | None
    community: Ref | None
    grid: Ref | None
    workers: list[Worker]
    station: StationRef | None
    precinct: Precinct | None
    nearest_grid: NearestGrid | None
    grids: list[Ref] | None = None
    match: Match | None = None
    boundary_version: BoundaryVersionRef | None = Field(
        None, description="asked with at=: the boundary version in force that day, which answered")


class Community(Ref):
    town: Ref
    grid_count: int
    building_count: int
    households: int
    population: int


class Health(BaseModel):
    status: str
    revision: str | None
    grids: int


class ImportProblem(BaseModel):
    severity: str
    layer: str
    code: str | None
    message: str
    field: str | None = None


class ImportVersion(BaseModel):
    id: int
    effective_from: str
    label: str
    live: bool = Field(description="网格已替换现行数据（生效日期不晚于今天且为今天生效的版本）")
    scheduled: bool = Field(description="生效日期晚于今天：到期自动生效")


class ImportAnswer(BaseModel):
    revision: str
    version: ImportVersion | None = Field(None, description="保存的网格版本；检查（dry_run）或内容未变化时为空")
    counts: dict[str, int]
    unchanged: bool
    dry_run: bool = Field(False, description="只检查（dry_run=true）：未写入任何数据")
    files: dict[str, str] = Field(default_factory=dict, description="每个图层读自哪个文件")
    columns: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="每个图层中按别名表或映射文件改名的列：原列名 → 字段（如 网格编码 → code）")
    warnings: list[ImportProblem]
