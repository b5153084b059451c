"""The HTML encoding of the OGC documents (``/req/html``): the same documents as the JSON, as a plain page a
person can click through in a browser, with no script and nothing loaded from elsewhere.

Every value is escaped: feature properties are data typed in by staff and imported from files.
"""

from __future__ import annotations

from html import escape
from typing import Any, Final

CSP: Final = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"

_STYLE: Final = ("body{font-family:sans-serif;margin:1.5em;max-width:70em}table{border-collapse:collapse}"
                 "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}"
                 "code{background:#f4f4f4}")


def _links(links: list[dict[str, Any]]) -> str:
    items = "".join(f'<li><a href="{escape(link["href"])}">{escape(link.get("title") or link["href"])}</a> '
                    f'<code>{escape(link["rel"])}</code></li>' for link in links)
    return f"<ul>{items}</ul>"


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>")


def _value(value: Any) -> str:
    return "" if value is None else escape(str(value))


def landing(doc: dict[str, Any]) -> str:
    return _page(doc["title"], f"<p>{escape(doc['description'])}</p>{_links(doc['links'])}")


def conformance(doc: dict[str, Any]) -> str:
    rows = "".join(f"<li><code>{escape(c)}</code></li>" for c in doc["conformsTo"])
    return _page("符合的标准类别", f"<ul>{rows}</ul>")


def collections(doc: dict[str, Any]) -> str:
    rows = "".join(
        f'<tr><td><a href="{escape(c["links"][0]["href"])}?f=html">{escape(c["id"])}</a></td>'
        f'<td>{escape(c["title"])}</td><td>{escape(c["description"])}</td></tr>' for c in doc["collections"])
    return _page("图层列表", f"<table><tr><th>编号</th><th>名称</th><th>说明</th></tr>{rows}</table>{_links(doc['links'])}")


def collection(doc: dict[str, Any]) -> str:
    bbox = doc["extent"].get("spatial", {}).get("bbox", [[]])[0]
    extent = f"<p>范围（经纬度）：{escape(', '.join(f'{v:.6f}' for v in bbox))}</p>" if bbox else ""
    return _page(doc["title"], f"<p>{escape(doc['description'])}</p>{extent}{_links(doc['links'])}")


def items(doc: dict[str, Any], title: str) -> str:
    features = doc["features"]
    names: list[str] = []
    for feature in features:
        names += [n for n in feature["properties"] if n not in names]
    head = "".join(f"<th>{escape(n)}</th>" for n in ["id", *names])
    rows = "".join(
        "<tr>" + f"<td>{_value(f['id'])}</td>" + "".join(f"<td>{_value(f['properties'].get(n))}</td>" for n in names)
        + "</tr>" for f in features)
    summary = f"<p>共 {doc['numberMatched']} 个要素，本页 {doc['numberReturned']} 个。</p>"
    return _page(title, f"{summary}<table><tr>{head}</tr>{rows}</table>{_links(doc['links'])}")


def feature(doc: dict[str, Any], title: str) -> str:
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{_value(v)}</td></tr>" for k, v in doc["properties"].items())
    return _page(f"{title} {doc['id']}", f"<table>{rows}</table>{_links(doc['links'])}")
