"""Excel in, Excel out (issue #12 §4): batch lookup of GBK and UTF-8 CSV and .xlsx tables, through the API and the CLI."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest
from python_calamine import CalamineWorkbook

from gridmap.coverage.tables import (
    ADDRESS_COLUMNS,
    XLSX_MEDIA_TYPE,
    XlsxLimits,
    find_column,
    read_table,
    safe_cell,
    write_csv,
)
from gridmap.errors import InvalidInput, PayloadTooLarge

BATCH = "/v1/lookup/batch"
ROWS = [("1", "丰林小区3号楼", "张三"), ("2", "金荷苑", "李四"), ("3", "北京市朝阳区", "王五")]
LEVELS = ["building", "compound", "none"]


def csv_bytes(header: list[str], rows: list[tuple], encoding: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def xlsx_bytes(header: list[str], rows: list[tuple], *, extra=None) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(list(row))
    if extra:
        extra(sheet)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def csv_answer(content: bytes) -> list[dict[str, str]]:
    assert content.startswith(b"\xef\xbb\xbf"), "CSV answers start with a UTF-8 BOM for Excel"
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


def xlsx_answer(content: bytes, sheet: int = 0) -> list[dict[str, object]]:
    rows = CalamineWorkbook.from_filelike(io.BytesIO(content)).get_sheet_by_index(sheet).to_python()
    return [dict(zip(rows[0], row)) for row in rows[1:]]


def post_table(client, data: bytes, content_type: str, **params):
    return client.post(BATCH, content=data, headers={"content-type": content_type}, params=params)


class TestApiRoundTrips:
    @pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8", "utf-8-sig"])
    def test_csv_in_any_encoding_comes_back_as_utf8_with_bom(self, client, encoding) -> None:
        data = csv_bytes(["编号", "地址", "上报人"], ROWS, encoding)
        response = post_table(client, data, "text/csv")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        rows = csv_answer(response.content)
        assert [(r["编号"], r["地址"], r["上报人"]) for r in rows] == ROWS
        assert [r["match_level"] for r in rows] == LEVELS
        assert rows[0]["grid_code"] and rows[0]["worker_phones"]

    def test_the_encoding_can_be_named(self, client) -> None:
        data = csv_bytes(["地址"], [("丰林小区3号楼",)], "gbk")
        response = post_table(client, data, "text/csv", encoding="gbk")
        assert response.status_code == 200 and csv_answer(response.content)[0]["match_level"] == "building"
        wrong = post_table(client, data, "text/csv", encoding="utf-8")
        assert wrong.status_code == 422 and "第 1 行" in wrong.json()["detail"] and "UTF-8" in wrong.json()["detail"]

    def test_xlsx_upload_comes_back_as_xlsx_with_columns_kept(self, client) -> None:
        data = xlsx_bytes(["编号", "详细地址", "上报人"], [(1, a, p) for _, a, p in ROWS])
        response = client.post(BATCH, files={"file": ("工单.xlsx", data, XLSX_MEDIA_TYPE)})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == XLSX_MEDIA_TYPE
        rows = xlsx_answer(response.content)
        assert [(r["编号"], r["详细地址"], r["上报人"]) for r in rows] == [("1", a, p) for _, a, p in ROWS]
        assert [r["match_level"] for r in rows] == LEVELS
        assert response.headers["x-match-levels"].startswith("building=1;compound=1;")

    def test_xlsx_as_the_body_and_csv_on_request(self, client) -> None:
        data = xlsx_bytes(["地址"], [("丰林小区3号楼",)])
        response = post_table(client, data, XLSX_MEDIA_TYPE, format="csv")
        assert response.status_code == 200 and csv_answer(response.content)[0]["match_level"] == "building"
        gbk = post_table(client, csv_bytes(["地址"], [("金荷苑",)], "gbk"), "text/csv", format="xlsx")
        assert gbk.headers["content-type"] == XLSX_MEDIA_TYPE
        assert xlsx_answer(gbk.content)[0]["community"] == "涑水社区"
        assert post_table(client, data, XLSX_MEDIA_TYPE, format="pdf").status_code == 422

    def test_formulas_in_xlsx_are_not_evaluated_and_not_written_back(self, client) -> None:
        def formulas(sheet) -> None:
            sheet["C2"] = "=HYPERLINK(\"http://evil\",\"x\")"

        data = xlsx_bytes(["地址", "备注"], [("丰林小区3号楼", "=1+1")], extra=formulas)
        response = post_table(client, data, XLSX_MEDIA_TYPE)
        assert response.status_code == 200, response.text
        row = xlsx_answer(response.content)[0]
        assert row["备注"] in ("", "=1+1") or not str(row["备注"]).isdigit()
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            sheets = [archive.read(n) for n in archive.namelist() if n.startswith("xl/worksheets/")]
        assert not any(b"<f>" in s or b"<f " in s for s in sheets), "no formula cells in the answer"


class TestColumns:
    @pytest.mark.parametrize("name", ["地址", "详细地址", "事发地址", "事件地址", "住址", "Address", " 地 址 "])
    def test_the_address_column_is_found_by_its_chinese_name(self, client, name) -> None:
        data = csv_bytes(["序号", name, "电话"], [("1", "丰林小区3号楼", "13800000000")], "gbk")
        response = post_table(client, data, "text/csv")
        assert response.status_code == 200, response.text
        assert csv_answer(response.content)[0]["match_level"] == "building"

    def test_aliases_in_one_place_in_order_of_preference(self) -> None:
        assert ADDRESS_COLUMNS[:6] == ("address", "地址", "详细地址", "事发地址", "事件地址", "住址")
        assert find_column(["住址", "详细地址"]) == 1
        assert find_column(["a", "b", "c"], "C") == 2 and find_column(["a", "上报位置"], "上报位置") == 1

    def test_the_column_can_be_given(self, client) -> None:
        data = csv_bytes(["编号", "上报位置"], [("1", "金荷苑")], "utf-8")
        assert post_table(client, data, "text/csv").status_code == 422
        response = post_table(client, data, "text/csv", column="上报位置")
        assert response.status_code == 200 and csv_answer(response.content)[0]["match_level"] == "compound"
        assert post_table(client, data, "text/csv", column="B").status_code == 200
        missing = post_table(client, data, "text/csv", column="门牌")
        assert missing.status_code == 422 and "门牌" in missing.json()["detail"]


class TestErrorsNameTheRow:
    def test_an_empty_address_cell_is_an_error_in_its_own_row_naming_the_excel_cell(self, client) -> None:
        rows = [(str(i), "丰林小区3号楼") for i in range(1, 11)] + [("11", "")]
        response = post_table(client, csv_bytes(["编号", "地址"], rows, "gbk"), "text/csv")
        assert response.status_code == 200, response.text
        answer = csv_answer(response.content)
        assert len(answer) == 11 and [r["编号"] for r in answer] == [str(i) for i in range(1, 12)]
        assert answer[-1]["error"] == "第 12 行 B 列（地址）：地址列为空" and answer[-1]["grid_code"] == ""
        assert all(r["error"] == "" and r["grid_code"] for r in answer[:-1])
        assert "invalid=1" in response.headers["X-Match-Levels"]

    def test_in_xlsx_too(self, client) -> None:
        data = xlsx_bytes(["编号", "事发地址"], [(1, "金荷苑"), (2, "   "), (3, "丰林小区3号楼")])
        response = post_table(client, data, XLSX_MEDIA_TYPE)
        assert response.status_code == 200, response.text
        answer = xlsx_answer(response.content)
        assert [r["error"] for r in answer] == ["", "第 3 行 B 列（事发地址）：地址列为空", ""]

    def test_undecodable_bytes_name_the_line(self, client) -> None:
        data = "地址\n金荷苑\n".encode("gbk") + b"\x81\x20\n"
        response = post_table(client, data, "text/csv")
        assert response.status_code == 422 and response.json()["detail"].startswith("第 3 行：无法按 GBK/GB18030 解码")

    def test_broken_xlsx_and_unknown_encodings_are_422(self, client) -> None:
        assert post_table(client, b"PK\x03\x04broken", XLSX_MEDIA_TYPE).status_code == 422
        assert post_table(client, b"address\nx\n", "text/csv", encoding="latin-9").status_code == 422

    def test_fully_empty_rows_are_skipped(self, client) -> None:
        response = post_table(client, "地址\n金荷苑\n\n,\n丰林小区3号楼\n".encode("gbk"), "text/csv")
        assert [r["match_level"] for r in csv_answer(response.content)] == ["compound", "building"]


class TestLargeUploads:
    def test_more_than_10000_rows_answer_with_counts_per_level(self, client) -> None:
        addresses = ["丰林小区3号楼", "金荷苑", "北京市朝阳区", "双塔社区"]
        rows = [(str(i), addresses[i % 4]) for i in range(10_002)]
        data = xlsx_bytes(["编号", "地址"], rows)
        response = post_table(client, data, XLSX_MEDIA_TYPE)
        assert response.status_code == 200, response.text[:300]
        levels = dict(part.split("=") for part in response.headers["x-match-levels"].split(";"))
        assert (levels["building"], levels["compound"], levels["none"], levels["community"]) == (
            "2501", "2501", "2500", "2500")
        book = CalamineWorkbook.from_filelike(io.BytesIO(response.content))
        assert book.sheet_names == ["结果", "汇总"]
        summary = dict(book.get_sheet_by_name("汇总").to_python())
        assert summary["行数"] == 10_002 and summary["级别 building"] == 2501 and summary["级别 none"] == 2500
        assert len(book.get_sheet_by_index(0).to_python()) == 10_003

    def test_small_xlsx_answers_have_one_sheet(self, client) -> None:
        response = post_table(client, xlsx_bytes(["地址"], [("金荷苑",)]), XLSX_MEDIA_TYPE)
        assert CalamineWorkbook.from_filelike(io.BytesIO(response.content)).sheet_names == ["结果"]


class TestHostileInput:
    @pytest.mark.parametrize("text", ["=1+1", "+1", "-2+3", "@SUM(A1)", "\t=x", "=HYPERLINK(\"http://x\")"])
    def test_csv_cells_never_start_a_formula(self, text) -> None:
        assert safe_cell(text) == "'" + text
        assert safe_cell("丰林小区") == "丰林小区" and safe_cell(3) == "3"
        out = write_csv(["地址", "备注"], [["丰林小区", text]]).decode("utf-8-sig")
        assert list(csv.reader(io.StringIO(out)))[1][1] == "'" + text

    def test_formula_cells_come_back_quoted_through_the_api(self, client) -> None:
        data = csv_bytes(["地址", "备注"], [("丰林小区3号楼", "=cmd|' /C calc'!A0"), ("金荷苑", "@SUM(1)")], "utf-8")
        rows = csv_answer(post_table(client, data, "text/csv").content)
        assert [r["备注"] for r in rows] == ["'=cmd|' /C calc'!A0", "'@SUM(1)"]

    def test_a_zip_bomb_is_refused_before_parsing(self, client) -> None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("[Content_Types].xml", "<Types/>")
            with archive.open("xl/sharedStrings.xml", "w") as entry:
                for _ in range(300):
                    entry.write(b"0" * (1 << 20))
        response = post_table(client, buffer.getvalue(), XLSX_MEDIA_TYPE)
        assert response.status_code == 413 and "xlsx" in response.json()["detail"]

    def test_a_sheet_cannot_claim_a_huge_bounding_box(self) -> None:
        def far(sheet) -> None:
            sheet["XFD1048576"] = "x"

        with pytest.raises(PayloadTooLarge, match="工作表过大"):
            read_table(xlsx_bytes(["地址"], [("金荷苑",)], extra=far), max_rows=100_000)

    def test_the_ratio_of_one_entry_is_limited(self) -> None:
        data = xlsx_bytes(["地址"], [("金荷苑",)] * 20_000)
        with pytest.raises(PayloadTooLarge, match="压缩比"):
            read_table(data, max_rows=100_000, limits=XlsxLimits(max_ratio=2, ratio_floor=1000))

    def test_the_row_limit_holds_for_tables(self) -> None:
        with pytest.raises(PayloadTooLarge):
            read_table(b"address\n" + b"x\n" * 11, max_rows=10)
        with pytest.raises(InvalidInput, match="找不到地址列.*address"):
            from gridmap.coverage.tables import find_column as find

            find(["name"])


class TestCommandLine:
    def run(self, *args) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "gridmap", "lookup", *map(str, args)],
                              check=False, capture_output=True, text=True, timeout=180)

    def test_gbk_csv_round_trip(self, sample_db_copy, tmp_path: Path) -> None:
        src = tmp_path / "工单.csv"
        src.write_bytes(csv_bytes(["编号", "事发地址", "上报人"], ROWS, "gbk"))
        result = self.run("--csv", src, "--out", tmp_path / "out.csv", "--db", sample_db_copy)
        assert result.returncode == 0, result.stderr
        rows = csv_answer((tmp_path / "out.csv").read_bytes())
        assert [(r["编号"], r["事发地址"], r["上报人"]) for r in rows] == ROWS
        assert [r["match_level"] for r in rows] == LEVELS
        assert "building 1" in result.stdout

    def test_xlsx_round_trip_with_the_column_given(self, sample_db_copy, tmp_path: Path) -> None:
        src = tmp_path / "in.xlsx"
        src.write_bytes(xlsx_bytes(["编号", "位置"], [(1, "丰林小区3号楼"), (2, "金荷苑")]))
        result = self.run("--csv", src, "--xlsx", tmp_path / "out.xlsx", "--column", "位置", "--db", sample_db_copy)
        assert result.returncode == 0, result.stderr
        rows = xlsx_answer((tmp_path / "out.xlsx").read_bytes())
        assert [(r["编号"], r["match_level"]) for r in rows] == [("1", "building"), ("2", "compound")]

    def test_errors_exit_2_name_the_row_and_write_nothing(self, sample_db_copy, tmp_path: Path) -> None:
        src = tmp_path / "in.csv"
        src.write_bytes(csv_bytes(["编号", "地址"], [("1", "金荷苑"), ("2", "")], "gbk"))
        (tmp_path / "out").mkdir()
        out = tmp_path / "out" / "out.csv"
        result = self.run("--csv", src, "--out", out, "--encoding", "utf-8", "--db", sample_db_copy)
        assert result.returncode == 2 and "第 1 行：无法按 UTF-8 解码" in result.stderr
        assert list((tmp_path / "out").iterdir()) == []
