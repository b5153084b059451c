"""Tables as staff keep them: CSV (UTF-8, UTF-8 with BOM, GBK/GB18030) and ``.xlsx``, read as text and written back.

Reading never trusts the file: an ``.xlsx`` is a zip, so its central directory and then every byte it unpacks to
are counted against :class:`XlsxLimits` before python-calamine sees it, and the cell references of each sheet are
scanned so that a sheet cannot claim a bounding box of a million rows by a million columns (calamine lays a sheet
out densely). Formulas are never evaluated: calamine reads the value Excel cached, or an empty cell. Every cell
comes back as text.

Writing guards against CSV injection (OWASP): a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return is prefixed with a single quote, so Excel shows it instead of running it. In ``.xlsx`` such cells
are written as typed text, never as formulas.

Row numbers in messages are the ones Excel shows: the header is row 1.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from gridmap.errors import InvalidInput, PayloadTooLarge, size_text

ADDRESS_COLUMNS: tuple[str, ...] = (
    "address", "地址", "详细地址", "事发地址", "事件地址", "住址", "现住址", "居住地址", "家庭住址", "户籍地址",
    "门牌地址", "所在地址", "联系地址", "事发地点", "地点",
)
"""Names of the address column, in order of preference (compared without spaces, ``address`` in any case)."""

XLSX_MAGIC = b"PK\x03\x04"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "utf-8-sig": "utf-8-sig", "gbk": "gb18030", "gb2312": "gb18030",
             "gb18030": "gb18030", "cp936": "gb18030"}
"""Encodings one may name (``?encoding=`` / ``--encoding``). GBK and GB2312 are read as GB18030, their superset."""

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class XlsxLimits:
    """What an uploaded ``.xlsx`` may unpack to; a zip bomb is refused (413) before any sheet is parsed."""

    max_bytes: int = 256 << 20
    max_files: int = 1000
    max_ratio: float = 200.0
    ratio_floor: int = 1 << 20
    """The ratio is only checked for entries that unpack to more than this."""
    max_cells: int = 5_000_000
    """Largest bounding box of a sheet, rows × columns."""
    max_columns: int = 1000


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    numbers: list[int] = field(default_factory=list)
    """The row number of each row as Excel shows it (the header is row ``numbers[0] - 1`` or earlier)."""
    kind: str = "csv"


def column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def where(table: Table, position: int, column: int) -> str:
    """``第 12 行 B 列（地址）`` for a row of ``table.rows`` and a column index."""
    name = table.header[column] if column < len(table.header) else ""
    return f"第 {table.numbers[position]} 行 {column_letter(column)} 列" + (f"（{name}）" if name else "")


def find_column(header: list[str], given: str | None = None) -> int:
    """The address column: the one named ``given`` (a header or an Excel letter), else the first alias found."""
    cleaned = [re.sub(r"\s+", "", h) for h in header]
    if given is not None and given.strip():
        wanted = re.sub(r"\s+", "", given)
        if wanted in cleaned:
            return cleaned.index(wanted)
        if re.fullmatch(r"[A-Za-z]{1,3}", wanted):
            index = sum((ord(c) - 64) * 26**i for i, c in enumerate(reversed(wanted.upper()))) - 1
            if index < len(header):
                return index
        raise InvalidInput(f"没有名为「{given}」的列（现有列：{'、'.join(header) or '无'}）")
    lowered = [h.lower() for h in cleaned]
    for alias in ADDRESS_COLUMNS:
        if alias.lower() in lowered:
            return lowered.index(alias.lower())
    raise InvalidInput(f"找不到地址列：列名应为 {'、'.join(ADDRESS_COLUMNS[:6])} 等之一，或用 column 参数指定"
                       f"（现有列：{'、'.join(header) or '无'}）")


# ---------------------------------------------------------------- reading


def read_table(data: bytes, *, encoding: str | None = None, max_rows: int,
               limits: XlsxLimits | None = None) -> Table:
    """A CSV or ``.xlsx`` file (told apart by its first bytes) as text rows; fully empty rows are left out."""
    if data.startswith(XLSX_MAGIC):
        return read_xlsx(data, max_rows=max_rows, limits=limits or XlsxLimits())
    return read_csv_text(decode_csv(data, encoding), max_rows=max_rows)


def decode_csv(data: bytes, encoding: str | None = None) -> str:
    """UTF-8 (with or without a BOM) or GB18030 (which reads GBK and GB2312), detected unless named."""
    if encoding is not None and encoding.strip():
        name = ENCODINGS.get(encoding.strip().lower().replace("_", "-"))
        if name is None:
            raise InvalidInput(f"不支持的编码 {encoding}：可用 UTF-8、GBK、GB18030")
        return _decode(data, "utf-8-sig" if name == "utf-8" else name)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InvalidInput("文件是 UTF-16 编码（Excel 的“Unicode 文本”）：请另存为 CSV（UTF-8）或 .xlsx")
    if data.startswith(codecs.BOM_UTF8):
        return _decode(data, "utf-8-sig")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _decode(data, "gb18030")


def _decode(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        shown = {"utf-8-sig": "UTF-8", "gb18030": "GBK/GB18030"}.get(encoding, encoding)
        raise InvalidInput(f"第 {line} 行：无法按 {shown} 解码（字节 0x{data[exc.start]:02X}）；"
                           "请另存为 UTF-8 或 GBK 编码的 CSV，或 .xlsx") from None


def read_csv_text(text: str, *, max_rows: int) -> Table:
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        return _table(enumerate(reader, start=1), max_rows=max_rows, kind="csv", empty="CSV 为空")
    except csv.Error as exc:
        raise InvalidInput(f"第 {reader.line_num} 行：CSV 格式错误（{exc}）") from None


def _table(numbered: Iterable[tuple[int, list[str]]], *, max_rows: int, kind: str, empty: str) -> Table:
    """The first non-empty row as the header, the other non-empty rows with their row numbers in the file
    (blank rows are skipped, as Excel users leave them); more than ``max_rows`` is a 413."""
    header: list[str] | None = None
    rows: list[list[str]] = []
    numbers: list[int] = []
    for number, row in numbered:
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = row
            continue
        rows.append(row)
        numbers.append(number)
        if len(rows) > max_rows:
            raise PayloadTooLarge(f"一次最多查询 {max_rows} 行；请分批提交")
    if header is None:
        raise InvalidInput(empty)
    return Table(header, rows, numbers, kind)


def read_xlsx(data: bytes, *, max_rows: int, limits: XlsxLimits) -> Table:
    from python_calamine import CalamineError, CalamineWorkbook

    _check_zip(data, limits)
    try:
        book = CalamineWorkbook.from_filelike(io.BytesIO(data))
        visible = [m.name for m in book.sheets_metadata if str(getattr(m, "visible", "Visible")).endswith("Visible")]
        sheet = book.get_sheet_by_name(visible[0]) if visible else book.get_sheet_by_index(0)
        cells = sheet.to_python(skip_empty_area=False)
    except (CalamineError, ValueError, TypeError, IndexError, KeyError) as exc:  # a broken or odd workbook
        raise InvalidInput(f"无法读取 .xlsx 文件：{str(exc)[:200]}") from None
    return _table(((number, _trimmed([_cell_text(value, number, column) for column, value in enumerate(raw)]))
                   for number, raw in enumerate(cells, start=1)),
                  max_rows=max_rows, kind="xlsx", empty=".xlsx 的第一个工作表为空")


def _trimmed(row: list[str]) -> list[str]:
    """A sheet row without its trailing empty cells (calamine pads every row to the sheet's width)."""
    while row and not row[-1].strip():
        row.pop()
    return row


def _cell_text(value: object, row: int, column: int) -> str:
    """A cell as text: whole numbers without ``.0``, dates as ISO dates; anything else unreadable is a 422."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    if value is None:
        return ""
    raise InvalidInput(f"第 {row} 行 {column_letter(column)} 列：单元格无法读取（{type(value).__name__}）")


_CELL_REF = re.compile(rb"<(?:\w+:)?c\b[^>]*?\sr=\"([A-Z]{1,3})(\d{1,7})\"")
_ROW_REF = re.compile(rb"<(?:\w+:)?row\b[^>]*?\sr=\"(\d{1,7})\"")
_ROW_START = re.compile(rb"<(?:\w+:)?row\b")
_CELL_START = re.compile(rb"<(?:\w+:)?c[\s>/]")


def _check_zip(data: bytes, limits: XlsxLimits) -> None:
    """Refuse a zip bomb from the central directory, then count every byte unpacked (declared sizes can lie)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if len(members) > limits.max_files:
                raise PayloadTooLarge(f".xlsx 中有 {len(members)} 个条目，最多 {limits.max_files} 个")
            if sum(m.file_size for m in members) > limits.max_bytes:
                raise PayloadTooLarge(f".xlsx 解压后超过上限 {size_text(limits.max_bytes)}")
            total = 0
            for info in members:
                if info.flag_bits & 0x1:
                    raise InvalidInput(".xlsx 已加密：请先在 Excel 中取消密码")
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    raise InvalidInput(f".xlsx 中的 {info.filename} 使用了不支持的压缩方式")
                content = bytearray()
                with archive.open(info) as source:
                    while chunk := source.read(1 << 20):
                        content += chunk
                        total += len(chunk)
                        if total > limits.max_bytes:
                            raise PayloadTooLarge(f".xlsx 解压后超过上限 {size_text(limits.max_bytes)}")
                        if len(content) > limits.ratio_floor and len(content) > limits.max_ratio * max(
                                info.compress_size, 1):
                            raise PayloadTooLarge(f".xlsx 中的 {info.filename} 压缩比异常，疑似压缩炸弹")
                if info.filename.startswith("xl/worksheets/") and info.filename.endswith(".xml"):
                    _check_extent(bytes(content), limits)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
        raise InvalidInput(f".xlsx 文件已损坏：{str(exc)[:200]}") from None


def _check_extent(xml: bytes, limits: XlsxLimits) -> None:
    """A sheet's bounding box (rows × columns), from its references and its counts of rows and cells."""
    rows = [int(n) for n in _ROW_REF.findall(xml)]
    cells = _CELL_REF.findall(xml)
    height = max(max(rows, default=0), max((int(n) for _, n in cells), default=0),
                 len(_ROW_START.findall(xml)))
    width = max((sum((ord(c) - 64) * 26**i for i, c in enumerate(reversed(letters.decode())))
                 for letters in {letters for letters, _ in cells}), default=0)
    width = max(width, max((len(_CELL_START.findall(part)) for part in _ROW_START.split(xml)), default=0))
    if width > limits.max_columns or height * width > limits.max_cells:
        raise PayloadTooLarge(f".xlsx 的工作表过大（{height} 行 × {width} 列）：最多 {limits.max_cells} 个单元格、"
                              f"{limits.max_columns} 列")


# ---------------------------------------------------------------- writing


def safe_cell(value: object) -> str:
    """Text for a CSV cell that Excel will not read as a formula (OWASP CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def write_csv(header: list[str], rows: list[list[object]]) -> bytes:
    """UTF-8 with a BOM, so that Excel opens it with the right characters."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([safe_cell(c) for c in header])
    for row in rows:
        writer.writerow([safe_cell(c) for c in row])
    return out.getvalue().encode("utf-8-sig")


_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def write_xlsx(header: list[str], rows: list[list[object]], *,
               summary: list[tuple[str, object]] | None = None) -> bytes:
    """One sheet 结果 (text cells, never formulas) and, when given, a sheet 汇总 of (label, value) pairs."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet = book.create_sheet("结果")

    def cells(values: list[object]) -> list[object]:
        out: list[object] = []
        for value in values:
            if isinstance(value, str):
                cell = WriteOnlyCell(sheet, _ILLEGAL.sub("", value))
                cell.data_type = "s"  # a string starting with '=' stays text
                out.append(cell)
            else:
                out.append(value)
        return out

    sheet.append(cells(list(header)))
    for row in rows:
        sheet.append(cells(list(row)))
    if summary is not None:
        totals = book.create_sheet("汇总")
        for label, value in summary:
            totals.append([label, value])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
