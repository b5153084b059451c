"""The closed loop: every transition by role, the audit log, versions, scopes and masking."""

from __future__ import annotations


import pytest
from incident_fixtures import ADMIN, act, api, incident_db, place, report, roles  # noqa: F401
from stores import RAW_ERRORS, dump_text, execute_raw, open_test_store

from gridmap.incidents.workflow import TRANSITIONS

pytestmark = pytest.mark.usefixtures("api")

LOOP = ["accept", "dispatch", "start", "resolve", "verify", "close"]


def walk(api, place, roles, steps: list[str], who: dict) -> dict:
    incident = report(api, place)
    for step in steps:
        response = act(api, incident, step, who[step] if isinstance(who, dict) and step in who else who,
                       note="原因" if TRANSITIONS[step].needs_note else None)
        assert response.status_code == 200, (step, response.text)
        incident = response.json()
    return incident


class TestAllowedTransitions:
    def test_the_full_loop_by_dispatcher_and_the_assigned_worker(self, api, place, roles) -> None:
        who = {"accept": roles.dispatcher, "dispatch": roles.dispatcher, "start": roles.worker,
               "resolve": roles.worker, "verify": roles.dispatcher, "close": roles.dispatcher}
        incident = walk(api, place, roles, LOOP, who)
        assert incident["status"] == "closed" and incident["status_label"] == "结案"
        assert all(incident["timestamps"][k] for k in ("accepted_at", "dispatched_at", "started_at",
                                                       "resolved_at", "verified_at", "closed_at"))

    def test_a_worker_of_the_same_grid_may_start_and_resolve(self, api, place, roles) -> None:
        who = {"accept": roles.dispatcher, "dispatch": roles.dispatcher, "start": roles.mate, "resolve": roles.mate}
        assert walk(api, place, roles, LOOP[:4], who)["status"] == "resolved"

    @pytest.mark.parametrize("role", ["admin", "dispatcher"])
    def test_staff_may_take_every_step(self, api, place, roles, role) -> None:
        assert walk(api, place, roles, LOOP, getattr(roles, role))["status"] == "closed"

    def test_return_then_dispatch_again(self, api, place, roles) -> None:
        incident = walk(api, place, roles, ["accept", "dispatch", "return"], roles.dispatcher)
        assert incident["status"] == "returned"
        assert act(api, incident, "dispatch", roles.dispatcher, assignee=roles.mate_code).json()["assignee"]["code"] \
            == roles.mate_code

    def test_reopen_after_failed_verification(self, api, place, roles) -> None:
        incident = walk(api, place, roles, LOOP[:4] + ["reopen"], roles.dispatcher)
        assert incident["status"] == "dispatched" and incident["timestamps"]["resolved_at"] is None

    def test_cancel_as_a_duplicate_merges_it(self, api, place, roles) -> None:
        first = report(api, place)
        second = report(api, place)
        assert first["id"] in second["duplicate_of"] and "possible_duplicate" in second["flags"]
        merged = act(api, second, "cancel", roles.dispatcher, note="重复上报", merge_into=first["id"]).json()
        assert merged["status"] == "cancelled" and merged["merged_into"] == first["id"]

    def test_supervise_flags_without_changing_status(self, api, place, roles) -> None:
        incident = walk(api, place, roles, ["accept"], roles.dispatcher)
        flagged = act(api, incident, "supervise", roles.dispatcher, note="限期办理").json()
        assert flagged["status"] == "accepted" and flagged["supervised"] is True
        assert flagged["supervision"]["ordered_by"].startswith("dispatcher:")


class TestForbiddenTransitions:
    @pytest.mark.parametrize("action", ["accept", "dispatch", "verify", "close", "cancel", "supervise", "return"])
    def test_a_worker_may_not_take_dispatcher_steps(self, api, place, roles, action) -> None:
        incident = report(api, place)
        response = act(api, incident, action, roles.worker, note="x")
        assert response.status_code == 403

    @pytest.mark.parametrize("action", ["accept", "start", "supervise"])
    def test_a_planner_may_not_act(self, api, place, roles, action) -> None:
        response = act(api, report(api, place), action, roles.planner)
        assert response.status_code == 403

    def test_the_public_may_not_act(self, api, place) -> None:
        incident = report(api, place)
        response = api.post(f"/v1/incidents/{incident['id']}/transitions", json={"action": "accept"})
        assert response.status_code == 401  # a token would help: 401, not 403

    def test_a_worker_outside_the_grid_gets_403(self, api, place, roles) -> None:
        incident = walk(api, place, roles, ["accept", "dispatch"], roles.dispatcher)
        assert act(api, incident, "start", roles.outsider).status_code == 403
        assert api.get(f"/v1/incidents/{incident['id']}", headers=roles.outsider).status_code == 403

    def test_steps_out_of_order_are_refused(self, api, place, roles) -> None:
        incident = report(api, place)
        response = act(api, incident, "close", roles.dispatcher)
        assert response.status_code == 422 and "上报" in response.json()["detail"]

    def test_return_and_cancel_need_a_reason(self, api, place, roles) -> None:
        incident = walk(api, place, roles, ["accept"], roles.dispatcher)
        response = act(api, incident, "cancel", roles.dispatcher, note=" ")
        assert response.status_code == 422 and "原因" in response.json()["detail"]

    def test_unknown_action(self, api, place, roles) -> None:
        assert act(api, report(api, place), "teleport", roles.dispatcher).status_code == 422


class TestVersions:
    def test_a_stale_if_match_is_412_and_changes_nothing(self, api, place, roles) -> None:
        incident = report(api, place)
        ok = api.post(f"/v1/incidents/{incident['id']}/transitions", json={"action": "accept"},
                      headers={**roles.dispatcher, "If-Match": '"1"'})
        assert ok.status_code == 200 and ok.headers["ETag"] == '"2"'
        stale = api.post(f"/v1/incidents/{incident['id']}/transitions", json={"action": "cancel", "note": "x"},
                         headers={**roles.dispatcher, "If-Match": '"1"'})
        assert stale.status_code == 412
        assert api.get(f"/v1/incidents/{incident['id']}", headers=roles.dispatcher).json()["status"] == "accepted"

    def test_concurrent_writers_never_lose_an_update(self, incident_db, api, place, roles) -> None:
        from gridmap.errors import Conflict

        store = open_test_store(incident_db)
        incident = report(api, place)
        event = {"at": "2026-01-01T00:00:00Z", "actor": "t", "role": "dispatcher", "action": "x"}
        store.update_incident(incident["id"], version=1, changes={"priority": "urgent"}, event=event)
        with pytest.raises(Conflict):
            store.update_incident(incident["id"], version=1, changes={"priority": "normal"}, event=event)
        assert store.get_incident(incident["id"])["priority"] == "urgent"


class TestAuditLog:
    def test_every_step_is_logged_with_who_when_from_to_and_note(self, api, place, roles) -> None:
        who = {"accept": roles.dispatcher, "dispatch": roles.dispatcher, "start": roles.worker,
               "resolve": roles.worker, "verify": roles.dispatcher, "close": roles.dispatcher}
        incident = walk(api, place, roles, LOOP, who)
        log = api.get(f"/v1/incidents/{incident['id']}/history", headers=roles.dispatcher).json()
        assert [e["action"] for e in log] == ["report"] + LOOP
        assert [e["to_status"] for e in log] == ["reported", "accepted", "dispatched", "in_progress", "resolved",
                                                  "verified", "closed"]
        assert all(e["from_status"] == prev["to_status"] for prev, e in zip(log, log[1:]))
        assert log[3]["actor"] == f"worker:{roles.worker_code}" and log[1]["role"] == "dispatcher"
        assert all(e["at"].endswith("Z") for e in log)
        assert len(log) == incident["version"]

    def test_the_log_cannot_be_edited_even_in_the_database(self, incident_db, api, place) -> None:
        incident = report(api, place)
        for statement in ("UPDATE incident_events SET note='x' WHERE incident_id=?",
                          "DELETE FROM incident_events WHERE incident_id=?"):
            with pytest.raises(RAW_ERRORS, match="append-only"):
                execute_raw(incident_db, statement, (incident["id"],))
        assert len(api.get(f"/v1/incidents/{incident['id']}/history", headers=ADMIN).json()) == 1

    def test_nothing_personal_in_the_log(self, api, place, roles) -> None:
        incident = walk(api, place, roles, ["accept"], roles.dispatcher)
        text = str(api.get(f"/v1/incidents/{incident['id']}/history", headers=roles.dispatcher).json())
        assert "13812345678" not in text and "王小明" not in text


class TestPersonalData:
    def test_staff_and_the_assigned_worker_see_the_reporter(self, api, place, roles) -> None:
        incident = report(api, place)
        assert incident["assignee"]["code"] == roles.worker_code
        for who in (roles.admin, roles.dispatcher, roles.worker):
            reporter = api.get(f"/v1/incidents/{incident['id']}", headers=who).json()["reporter"]
            assert reporter == {"name": "王小明", "phone": "13812345678"}

    def test_everyone_else_sees_it_masked(self, api, place, roles) -> None:
        answer = api.post("/v1/incidents", json={"category": "infra.streetlight", "description": "路灯不亮",
                                                 "lon": place.lon, "lat": place.lat,
                                                 "reporter": {"name": "王小明", "phone": "13812345678"}}).json()
        views = [api.get(f"/v1/incidents/{answer['id']}", headers=roles.mate).json()]
        views.append(api.get(f"/v1/incidents/{answer['id']}", headers={"X-Receipt": answer["receipt"]}).json())
        views.append(answer)  # the intake answer goes to the (anonymous) reporter
        for view in views:
            assert view["reporter"] == {"name": "王**", "phone": "138****5678"}

    def test_planners_read_anonymised_points_without_reporter_or_text(self, api, place, roles) -> None:
        incident = report(api, place)
        view = api.get(f"/v1/incidents/{incident['id']}", headers=roles.planner).json()
        assert view["status"] == "reported" and view["grid"]["code"] == place.grid_code
        assert not {"reporter", "description", "assignee"} & set(view)
        assert set(view["location"]) == {"lon", "lat"}

    def test_listing_masks_too(self, api, place, roles) -> None:
        report(api, place)
        items = api.get("/v1/incidents", params={"limit": 20}, headers=roles.mate).json()["items"]
        assert items and all("****" in (i["reporter"]["phone"] or "****") for i in items)
        planned = api.get("/v1/incidents", params={"limit": 20}, headers=roles.planner).json()["items"]
        assert planned and not any("reporter" in i or "description" in i for i in planned)


class TestPublicAccess:
    def test_the_receipt_shows_the_status_of_ones_own_report(self, api, place) -> None:
        incident = report(api, place)
        assert api.get(f"/v1/incidents/{incident['id']}", params={"receipt": incident["receipt"]}).json()["status"] \
            == "reported"
        assert api.get(f"/v1/incidents/{incident['id']}", params={"receipt": "wrong"}).status_code == 403
        assert api.get(f"/v1/incidents/{incident['id']}").status_code == 401
        assert api.get("/v1/incidents").status_code == 401

    def test_feedback_after_resolution(self, api, place, roles) -> None:
        incident = report(api, place)
        early = api.post(f"/v1/incidents/{incident['id']}/feedback", json={"receipt": incident["receipt"], "rating": 5})
        assert early.status_code == 422
        walk_id = incident["id"]
        for step in LOOP[:4]:
            act(api, {"id": walk_id}, step, roles.dispatcher)
        rated = api.post(f"/v1/incidents/{walk_id}/feedback",
                         json={"receipt": incident["receipt"], "rating": 4, "comment": "很快"})
        assert rated.status_code == 200 and rated.json()["rating"] == 4


class TestTokens:
    def test_revocation_takes_effect_at_once(self, api, incident_db) -> None:
        from gridmap import auth

        store = open_test_store(incident_db)
        token_id, token = auth.create_token(store, role="dispatcher")
        headers = {"Authorization": f"Bearer {token}"}
        assert api.get("/v1/incidents/stats", headers=headers).status_code == 200
        auth.revoke_token(store, token_id)
        assert api.get("/v1/incidents/stats", headers=headers).status_code == 401

    def test_admin_endpoint_creates_and_revokes(self, api, roles) -> None:
        created = api.post("/v1/admin/tokens", json={"role": "planner"}, headers=roles.admin)
        assert created.status_code == 201
        headers = {"Authorization": f"Bearer {created.json()['token']}"}
        assert api.get("/v1/incidents/stats", headers=headers).status_code == 200
        assert api.delete(f"/v1/admin/tokens/{created.json()['id']}", headers=roles.admin).status_code == 204
        assert api.get("/v1/incidents/stats", headers=headers).status_code == 401
        assert api.post("/v1/admin/tokens", json={"role": "planner"}, headers=roles.dispatcher).status_code == 403

    def test_only_hashes_are_stored(self, incident_db) -> None:
        from gridmap import auth

        _, token = auth.create_token(open_test_store(incident_db), role="planner")
        dump = dump_text(incident_db)
        assert token not in dump and "CREATE TABLE" in dump.replace("CREATE TABLE IF", "CREATE TABLE")
        assert token not in dump

    def test_cli_token_create_and_revoke(self, incident_db) -> None:
        import subprocess
        import sys

        made = subprocess.run([sys.executable, "-m", "gridmap", "token", "create", "--role", "planner", "--db",
                               str(incident_db)], capture_output=True, text=True, timeout=60)
        assert made.returncode == 0 and made.stdout.startswith("gm_")
        token_id = made.stdout.split("_")[1]
        revoked = subprocess.run([sys.executable, "-m", "gridmap", "token", "revoke", token_id, "--db",
                                  str(incident_db)], capture_output=True, text=True, timeout=60)
        assert revoked.returncode == 0
        again = subprocess.run([sys.executable, "-m", "gridmap", "token", "revoke", token_id, "--db",
                                str(incident_db)], capture_output=True, text=True, timeout=60)
        assert again.returncode == 1 and "不存在或已撤销" in again.stderr
