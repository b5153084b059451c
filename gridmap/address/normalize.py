"""Normalising free-typed Chinese addresses into one canonical spelling.

``normalize`` is applied both to the standard address library and to every query, so two spellings of
the same place compare equal whatever the operator typed: full-width or half-width, traditional or
simplified characters, spaces and punctuation, Chinese or Arabic numerals.
"""

from __future__ import annotations

import importlib.resources
import re
import unicodedata
from functools import lru_cache

import cn2an

__all__ = ["normalize", "to_simplified", "CN_DIGITS", "ORDINAL_AFTER"]

# Traditional → simplified, one character at a time, from OpenCC's TSCharacters dictionary (shipped by
# opencc-python-reimplemented). Character-level conversion is enough for place names and is a single
# str.translate call. A few characters are also correct simplified forms in names and are kept.
_KEEP = set("乾")


def _load_t2s() -> dict[int, str]:
    table: dict[int, str] = {}
    try:
        text = (importlib.resources.files("opencc") / "dictionary" / "TSCharacters.txt").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError, OSError):  # pragma: no cover - dependency missing
        text = ""
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 2 or len(parts[0]) != 1 or parts[0] in _KEEP:
            continue
        target = parts[1].split()[0]
        if len(target) == 1 and target != parts[0]:
            table[ord(parts[0])] = target
    # the address words, should the dictionary be missing
    for src, dst in zip("號樓棟單層區縣鎮鄉園莊門戶號衚衕裏裡", "号楼栋单层区县镇乡园庄门户号胡同里里", strict=True):
        table.setdefault(ord(src), dst)
    return table


_T2S = _load_t2s()

# Punctuation and spaces are dropped; dash-like marks become '-', '＃'/'♯' become '#'.
_DASHES = "‐‑‒–—―−－~～_/／\\之"
_DASH_RE = re.compile("[" + re.escape(_DASHES.replace("之", "")) + "]+")
_DROP_RE = re.compile(r"[\s\u3000,，。.．、;；:：'\"“”‘’`()（）\[\]【】{}<>《》〈〉!！?？·•…*+=|@$%^&]+")
_MULTI_DASH = re.compile(r"-{2,}")

CN_DIGITS = "零〇一二三四五六七八九两幺"
_CN_NUM = "[零〇一二三四五六七八九十百千两幺]"
_RUN = re.compile(f"{_CN_NUM}+")
_MARK_AFTER = ("号", "栋", "幢", "座", "单元", "层", "楼", "室", "户", "门", "排", "组", "期", "#", "-")
_MARK_BEFORE = ("-", "单元", "层", "楼", "室", "栋", "幢", "座")
_PURE = re.compile(f"[{CN_DIGITS}]+")

ORDINAL_AFTER = frozenset("区园村院楼寓厦场庄苑府城湾里馆庭墅街道同路巷弄会处镇乡号栋幢座元层室户期排组")
"""Last characters of the words after which 第 before a number can only be an ordinal (小区第3栋, 人民路第5号,
2单元第3层): every generic ending of a compound, road or region (``parse.COMPOUND_SUFFIXES`` …, kept in step
by tests/test_address_parse.py) and every numbered mark. After any other character 第 is part of a name
(状元门第, 状元及第) and is kept: dropping it would leave a shorter name that may be another place's (issue
#12). 门 counts only after a number (3门第2层), where it is a mark, not a name's character."""
_ORDINAL = re.compile(r"(?:^|(?<=[^\u4e00-\u9fff])|(?<=\d门)|(?<=[" + "".join(sorted(ORDINAL_AFTER)) + r"]))第(?=\d)")


@lru_cache(maxsize=4096)
def _cn_to_digits(numeral: str) -> str:
    plain = numeral.replace("幺", "一").replace("两", "二")
    try:
        if re.fullmatch(f"[{CN_DIGITS}]+", plain) and len(plain) > 1:
            # digit by digit: 五零一 → 501, 一〇一 → 101 (keeps leading zeros, unlike a value)
            return "".join(str("零一二三四五六七八九".index("零" if ch == "〇" else ch)) for ch in plain)
        return str(cn2an.cn2an(plain, "smart"))
    except (ValueError, KeyError, TypeError):
        return numeral


def _numerals(text: str) -> str:
    if not any(ch in text for ch in "零〇一二三四五六七八九十百千两幺"):
        return text

    def convert(m: re.Match[str]) -> str:
        run = m.group(0)
        before, after = text[: m.start()], text[m.end() :]
        in_context = after.startswith(_MARK_AFTER) or before.endswith(_MARK_BEFORE) or (
            not after and before[-1:].isdigit()
        )
        digit_by_digit = _PURE.fullmatch(run) is not None and (len(run) >= 3 or "零" in run or "〇" in run)
        if in_context or digit_by_digit:
            return _cn_to_digits(run)
        return run

    return _RUN.sub(convert, text)


def to_simplified(text: str) -> str:
    return text.translate(_T2S)


@lru_cache(maxsize=65536)
def normalize(text: str) -> str:
    """Canonical spelling of an address: NFKC, simplified characters, no spaces or punctuation
    (except '-' and '#'), upper-case Latin letters and Arabic numerals in address positions."""
    s = unicodedata.normalize("NFKC", text)
    s = s.translate(_T2S)
    s = s.replace("♯", "#")
    s = _DASH_RE.sub("-", s)
    s = _DROP_RE.sub("", s)
    s = "".join(ch for ch in s if unicodedata.category(ch)[0] != "C")
    s = _MULTI_DASH.sub("-", s).strip("-")
    s = _numerals(s)
    s = s.upper()
    # tidy the marks: 3#楼 → 3#, 3号-楼 typed oddly, 第3栋 → 3栋 (an ordinal 第 only: see ORDINAL_AFTER)
    s = re.sub(r"(?<=\d)#楼", "#", s)
    s = _ORDINAL.sub("", s)
    return s
