"""Staff-maintained records in the store (both backends): numbered per kind, compare-and-set updates,
filters on lifted columns and body fields, and a change log written with every change that nobody
can edit afterwards."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from stores import open_test_store

from gridmap.errors import Conflict
from gridmap.store import is_database_url
from gridmap.store.base import EntityQuery

AT = "2026-12-05T08:00:00.000Z"


@pytest.fixture
def store(sample_db_copy):
    return open_test_store(sample_db_copy)


def _member(name: str, community: str, skills: list[str], key: str | None = None) -> dict:
    return {"name": name, "phone": "13800000000", "community_code": community, "skills": skills,
            "status": "active", **({"key": key} if key else {})}


def test_records_are_numbered_per_kind_and_read_back(store):
    first = store.insert_entities("member", [_member("王芳", "C1", ["医疗"]), _member("李强", "C2", ["维修"])],
                                  actor="admin:t1", at=AT)
    other = store.insert_entities("need", [{"title": "路灯", "community_code": "C1"}], actor="admin:t1", at=AT)
    assert [r["n"] for r in first] == [1, 2] and other[0]["n"] == 1
    got = store.get_entity("member", 2)
    assert got["name"] == "李强" and got["skills"] == ["维修"] and got["version"] == 1
    assert got["community_code"] == "C2" and got["created_at"] == AT
    assert store.get_entity("member", 3) is None


def test_filters_read_lifted_columns_and_body_fields(store):
    store.insert_entities("member", [_member("王芳", "C1", ["医疗", "法律咨询"]), _member("李强", "C2", ["维修"]),
                                     _member("赵敏", "C1", ["维修"])], actor="admin:t1", at=AT)
    rows, total = store.query_entities(EntityQuery("member", communities=("C1",)))
    assert total == 2 and [r["name"] for r in rows] == ["王芳", "赵敏"]
    rows, total = store.query_entities(EntityQuery("member", contains=(("skills", "维修"),)))
    assert [r["name"] for r in rows] == ["李强", "赵敏"]
    rows, total = store.query_entities(EntityQuery("member", fields=(("name", "王芳"),)))
    assert total == 1 and rows[0]["skills"] == ["医疗", "法律咨询"]
    rows, total = store.query_entities(EntityQuery("member"), limit=1, offset=1)
    assert total == 3 and [r["name"] for r in rows] == ["李强"]
    assert store.query_entities(EntityQuery("member", communities=()))[1] == 0


def test_update_is_compare_and_set_and_logged(store):
    (rec,) = store.insert_entities("alias", [{"key": "电业局家属院", "target": "供电公司家属院"}], actor="admin:t1", at=AT)
    later = "2026-12-05T09:00:00.000Z"
    new = store.update_entity("alias", rec["n"], version=1, record={"key": "电业局家属院", "target": "供电小区"},
                              actor="dispatcher:t2", at=later)
    assert new["version"] == 2 and new["target"] == "供电小区" and new["updated_at"] == later
    with pytest.raises(Conflict):
        store.update_entity("alias", rec["n"], version=1, record={"target": "别的"}, actor="x", at=later)
    assert store.get_entity("alias", rec["n"])["target"] == "供电小区"
    log = store.entity_changes("alias", rec["n"])
    assert [(c["action"], c["actor"], c["version"]) for c in log] == [("create", "admin:t1", 1),
                                                                    ("update", "dispatcher:t2", 2)]
    assert log[1]["before"]["target"] == "供电公司家属院" and log[1]["after"]["target"] == "供电小区"
    assert store.entity_seq("alias") == log[-1]["seq"]
    assert [c["seq"] for c in store.entity_changes("alias", after_seq=log[0]["seq"])] == [log[1]["seq"]]


def test_a_taken_key_is_refused_and_nothing_is_written(store):
    store.insert_entities("alias", [{"key": "二中", "target": "临猗二中"}], actor="a", at=AT)
    with pytest.raises(Conflict):
        store.insert_entities("alias", [{"key": "三中", "target": "临猗三中"}, {"key": "二中", "target": "x"}],
                              actor="a", at=AT)
    assert store.query_entities(EntityQuery("alias"))[1] == 1
    assert store.find_entity("alias", "三中") is None
    assert store.find_entity("alias", "二中")["target"] == "临猗二中"


def test_the_change_log_cannot_be_edited(store, sample_db_copy):
    store.insert_entities("need", [{"title": "路灯", "community_code": "C1"}], actor="a", at=AT)
    if is_database_url(str(sample_db_copy)):
        with psycopg.connect(str(sample_db_copy)) as conn, pytest.raises(psycopg.Error, match="append-only"):
            conn.execute("UPDATE entity_changes SET actor = 'nobody'")
    else:
        with sqlite3.connect(sample_db_copy) as conn, pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM entity_changes")
    assert store.entity_changes("need")[0]["actor"] == "a"
