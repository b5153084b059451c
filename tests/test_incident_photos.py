"""Incident photos (issue #15 §4), on both stores: real photos made here with the metadata phones write
(EXIF GPS, Make/Model, a maker note, a body serial number, XMP, an ICC profile, a comment, Orientation=6),
and a real HEIC; what is stored and served carries none of it and is upright. Limits, refused files (nothing
stored), thumbnails, who may add and see which photo, the history row, and Open311's media."""

from __future__ import annotations

import io
import struct
import zlib
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from incident_fixtures import ADMIN, Place, act, api, incident_db, place, report, roles  # noqa: F401
from PIL import Image, ImageCms
from stores import query_raw

from gridmap import access
from gridmap.auth import PUBLIC, Actor
from gridmap.errors import Conflict, Forbidden, NotFound
from gridmap.incidents import images, photos
from gridmap.store.photo_tables import photo_folder

MAKE, MODEL, SERIAL = "GridmapTestMake", "PhoneModelX9", "BODY-SERIAL-77341"
MAKER_NOTE = b"SECRET-MAKER-NOTE-0123456789"
COMMENT = b"taken at home by resident"
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description Owner="ResidentOwnerName"/></x:xmpmeta>'
GPS = {1: "N", 2: (35.0, 8.0, 30.5), 3: "E", 4: (110.0, 46.0, 9.25)}
LEAKS = (b"Exif", b"GPS", MAKE.encode(), MODEL.encode(), SERIAL.encode(), MAKER_NOTE, COMMENT, b"xmpmeta",
         b"ResidentOwnerName", b"ICC_PROFILE", b"http://ns.adobe.com")
RED, BLUE = (255, 0, 0), (0, 0, 255)


# photos as phones make them --------------------------------------------------------------------------

def phone_exif(orientation: int = 6) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = MAKE
    exif[0x0110] = MODEL
    exif.get_ifd(0x8825).update(GPS)
    exif.get_ifd(0x8769)[0x927C] = MAKER_NOTE
    exif.get_ifd(0x8769)[0xA431] = SERIAL
    return exif


def marked(width: int = 300, height: int = 200) -> Image.Image:
    """Blue with a red block in the top-left corner of the sensor: where it ends up shows the rotation."""
    image = Image.new("RGB", (width, height), BLUE)
    image.paste(RED, (0, 0, width // 5, height // 5))
    return image


def phone_jpeg(width: int = 300, height: int = 200) -> bytes:
    out = io.BytesIO()
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    marked(width, height).save(out, "JPEG", exif=phone_exif().tobytes(), xmp=XMP, comment=COMMENT, icc_profile=icc,
                               quality=95)
    return out.getvalue()


def phone_heic() -> bytes:
    out = io.BytesIO()
    marked().save(out, "HEIF", exif=phone_exif().tobytes(), quality=90)
    return out.getvalue()


def png(width: int, height: int, mode: str = "RGBA") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), (10, 200, 30, 128) if mode == "RGBA" else 0).save(
        out, "PNG", exif=phone_exif(1).tobytes())
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` × ``height`` pixels in a few bytes: a decompression bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def jpeg_markers(data: bytes) -> list[int]:
    """The segment markers of a JPEG up to its image data."""
    assert data[:2] == b"\xff\xd8"
    found, i = [], 2
    while data[i] == 0xFF:
        marker = data[i + 1]
        found.append(marker)
        if marker == 0xDA:
            break
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return found


def assert_bare(data: bytes) -> Image.Image:
    """A JPEG with no metadata segment (only JFIF's APP0), none of the phone's strings, no EXIF at all."""
    markers = jpeg_markers(data)
    assert not [m for m in markers if 0xE1 <= m <= 0xEF or m == 0xFE], [hex(m) for m in markers]
    assert [needle for needle in LEAKS if needle in data] == []
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG" and dict(image.getexif()) == {}
    assert not {"exif", "icc_profile", "xmp", "comment"} & set(image.info)
    return image


def close_to(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 40 for a, b in zip(pixel, colour))


# the API ------------------------------------------------------------------------------------------------

def upload(api: TestClient, incident_id: int, files: list[tuple[str, bytes, str]], stage: str = "intake",
           headers: dict | None = None):
    return api.post(f"/v1/incidents/{incident_id}/photos", data={"stage": stage},
                    files=[("files", f) for f in files], headers=headers or {})


def reporter(incident: dict) -> dict:
    return {"X-Receipt": incident["receipt"]}


def stored_state(api: TestClient, incident_id: int) -> tuple[list, int, int]:
    """(photos as the admin lists them, history length, photo rows in the whole store)."""
    listed = api.get(f"/v1/incidents/{incident_id}/photos", headers=ADMIN).json()
    history = api.get(f"/v1/incidents/{incident_id}/history", headers=ADMIN).json()
    store = api.app.state.store
    location = getattr(store, "url", None) or store.path
    return listed, len(history), query_raw(location, "SELECT count(*) FROM incident_photos")[0][0]


@pytest.fixture(scope="module")
def handled(api, place, roles) -> dict:
    """A street light report with the resident's photo, then 处置前 and 处置后 photos by the assigned worker."""
    incident = report(api, place)
    assert upload(api, incident["id"], [("IMG_0001.JPG", phone_jpeg(), "image/jpeg")],
                  headers=reporter(incident)).status_code == 201
    for action in ("accept", "dispatch"):
        assert act(api, incident, action, roles.dispatcher).status_code == 200
    assert upload(api, incident["id"], [("before.jpg", phone_jpeg(), "image/jpeg")], "before",
                  roles.worker).status_code == 201
    assert act(api, incident, "start", roles.worker).status_code == 200
    assert upload(api, incident["id"], [("after.heic", phone_heic(), "image/heic")], "after",
                  roles.worker).status_code == 201
    assert act(api, incident, "resolve", roles.worker).status_code == 200
    listed = api.get(f"/v1/incidents/{incident['id']}/photos", headers=ADMIN).json()
    return {**incident, "photos": {p["stage"]: p["id"] for p in listed}}


# stripping, orientation, formats, thumbnails -------------------------------------------------------------

class TestWhatIsStored:
    def test_a_phone_photo_loses_location_and_device_and_is_turned_upright(self, api, place) -> None:
        sent = phone_jpeg()
        original = Image.open(io.BytesIO(sent))
        assert dict(original.getexif().get_ifd(0x8825)) and MAKER_NOTE in sent and XMP in sent  # the test is real
        incident = report(api, place)
        answer = upload(api, incident["id"], [("IMG_0001.JPG", sent, "image/jpeg")], headers=reporter(incident))
        assert answer.status_code == 201, answer.text
        [shown] = answer.json()
        assert (shown["width"], shown["height"]) == (200, 300) and shown["content_type"] == "image/jpeg"
        for url in (shown["url"], shown["thumbnail_url"]):
            served = api.get(url, headers=ADMIN)
            assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
            assert served.headers["cache-control"].startswith("private")
            image = assert_bare(served.content)
            assert image.size == (200, 300)  # held upright: Orientation=6 applied, then dropped
            width = image.width
            assert close_to(image.getpixel((width - 8, 8)), RED) and close_to(image.getpixel((8, 8)), BLUE)
        raw = api.app.state.store.photo_bytes(shown["id"])
        assert raw == api.get(shown["url"], headers=ADMIN).content  # what is stored is what is served
        assert_bare(raw)

    def test_an_iphone_heic(self, api, place, roles) -> None:
        sent = phone_heic()
        assert Image.open(io.BytesIO(sent)).format == "HEIF" and MAKE.encode() in sent
        assert dict(Image.open(io.BytesIO(sent)).getexif().get_ifd(0x8825))
        incident = report(api, place, category="infra.sign")
        answer = upload(api, incident["id"], [("IMG_4032.HEIC", sent, "image/heic")], headers=roles.dispatcher)
        assert answer.status_code == 201, answer.text
        image = assert_bare(api.get(answer.json()[0]["url"], headers=ADMIN).content)
        assert image.size == (200, 300) and close_to(image.getpixel((image.width - 8, 8)), RED)

    def test_large_photos_are_bounded_and_thumbnailed_and_transparency_is_white(self, api, place, roles) -> None:
        incident = report(api, place, category="infra.sign")
        answer = upload(api, incident["id"], [("wide.png", png(2600, 1300), "image/png"),
                                               ("tall.jpg", phone_jpeg(3000, 2400), "image/jpeg")],
                        headers=roles.dispatcher)
        assert answer.status_code == 201, answer.text
        wide, tall = answer.json()
        assert (wide["width"], wide["height"]) == (images.FULL_SIDE, 1024)
        assert (wide["thumbnail"]["width"], wide["thumbnail"]["height"]) == (images.THUMB_SIDE, 160)
        assert (tall["width"], tall["height"]) == (1638, images.FULL_SIDE)  # 2400 × 3000 upright, bounded
        thumb = assert_bare(api.get(wide["thumbnail_url"], headers=ADMIN).content)
        assert thumb.size == (320, 160) and close_to(thumb.getpixel((5, 5)), (132, 227, 142))  # on white


# refusals: 4xx in Chinese, nothing stored --------------------------------------------------------------

class TestRefused:
    @pytest.mark.parametrize(("name", "data", "status", "said"), [
        ("photo.jpg", "这不是照片，只是文字".encode(), 422, "不是可识别的图片"),
        ("anim.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", 422, "不是可识别的图片"),
        ("cut.jpg", phone_jpeg(600, 400)[:1200], 422, "照片“cut.jpg”"),
        ("empty.jpg", b"", 422, "空文件"),
        ("huge.png", png_header_only(10_000, 6_000), 422, "像素过多"),
        ("bomb.png", png_header_only(40_000, 40_000), 422, "像素过多"),
        ("big.jpg", b"\xff\xd8\xff" + b"\x00" * images.MAX_PHOTO_BYTES, 413, "每张照片最多 8 MB"),
    ], ids=["photo.jpg", "anim.gif", "cut.jpg", "empty.jpg", "huge.png", "bomb.png", "big.jpg"])
    # ids by name: a test id made from the bytes differed between xdist workers (the phone JPEG's bytes vary)
    def test_a_bad_file_refuses_the_whole_upload(self, api, place, roles, name, data, status, said) -> None:
        incident = report(api, place, category="infra.sign")
        before = stored_state(api, incident["id"])
        folder = sorted(photo_folder(api.app.state.store.path).rglob("*")) if hasattr(api.app.state.store,
                                                                                       "path") else []
        answer = upload(api, incident["id"], [("ok.jpg", phone_jpeg(), "image/jpeg"), (name, data, "image/jpeg")],
                        headers=roles.dispatcher)
        assert answer.status_code == status, answer.text
        assert said in answer.json()["detail"]
        assert stored_state(api, incident["id"]) == before
        if hasattr(api.app.state.store, "path"):
            assert sorted(photo_folder(api.app.state.store.path).rglob("*")) == folder

    def test_at_most_four_a_stage(self, api, place, roles) -> None:
        incident = report(api, place, category="infra.sign")
        five = [(f"{i}.jpg", phone_jpeg(), "image/jpeg") for i in range(5)]
        refused = upload(api, incident["id"], five, headers=roles.dispatcher)
        assert refused.status_code == 422 and "最多上传 4 张" in refused.json()["detail"]
        assert upload(api, incident["id"], five[:3], headers=roles.dispatcher).status_code == 201
        more = upload(api, incident["id"], five[:2], headers=roles.dispatcher)
        assert more.status_code == 422 and "已有 3 张" in more.json()["detail"]
        assert upload(api, incident["id"], five[:1], headers=roles.dispatcher).status_code == 201
        assert len(stored_state(api, incident["id"])[0]) == photos.MAX_PHOTOS_PER_STAGE

    def test_a_stage_must_fit_the_status_and_be_known(self, api, place, roles) -> None:
        incident = report(api, place, category="infra.sign")
        jpeg = [("a.jpg", phone_jpeg(), "image/jpeg")]
        after = upload(api, incident["id"], jpeg, "after", roles.dispatcher)
        assert after.status_code == 422 and "不能添加处置后照片" in after.json()["detail"]
        unknown = upload(api, incident["id"], jpeg, "later", roles.dispatcher)
        assert unknown.status_code == 422 and "stage" in unknown.json()["detail"]
        assert upload(api, 10**9, jpeg, headers=roles.dispatcher).status_code == 404

    def test_two_uploads_at_once_cannot_pass_the_limit(self, api, place) -> None:
        """The store counts again inside its transaction: the second of two racing uploads is a 409."""
        store = api.app.state.store
        incident = report(api, place, category="infra.sign")
        clean = images.clean_photo(phone_jpeg())
        rows = [{"id": f"{n:024x}", "incident_id": incident["id"], "stage": "before", "created_at": "2026-01-01T00:00:00Z",
                 "actor": "dispatcher:x", "role": "dispatcher", "width": clean.width, "height": clean.height,
                 "size": len(clean.image), "thumb_width": clean.thumb_width, "thumb_height": clean.thumb_height,
                 "thumb_size": len(clean.thumbnail), "sha256": "0" * 64, "image": clean.image,
                 "thumbnail": clean.thumbnail} for n in range(incident["id"] * 10, incident["id"] * 10 + 5)]
        event = {"at": "2026-01-01T00:00:00Z", "actor": "dispatcher:x", "role": "dispatcher", "action": "photo"}
        store.insert_photos(incident["id"], rows[:3], event=event, limit=4)
        with pytest.raises(Conflict):
            store.insert_photos(incident["id"], rows[3:], event=event, limit=4)
        with pytest.raises(NotFound):
            store.insert_photos(10**9, rows[3:4], event=event, limit=4)
        assert [p["id"] for p in store.incident_photos([incident["id"]])] == [r["id"] for r in rows[:3]]
        assert all(store.photo_bytes(r["id"]) is None for r in rows[3:])  # no file, no row left behind
        if hasattr(store, "path"):
            assert not any(photo_folder(store.path).rglob(f"{rows[3]['id']}*"))


# who may add and see ----------------------------------------------------------------------------------

class TestWhoSees:
    def test_dispatcher_and_assignee_see_every_photo(self, api, handled, roles) -> None:
        for headers in (roles.dispatcher, roles.admin, roles.worker):
            listed = api.get(f"/v1/incidents/{handled['id']}/photos", headers=headers)
            assert listed.status_code == 200 and [p["stage"] for p in listed.json()] == ["intake", "before", "after"]
            for photo_id in handled["photos"].values():
                assert api.get(f"/v1/photos/{photo_id}/thumbnail", headers=headers).status_code == 200
        detail = api.get(f"/v1/incidents/{handled['id']}", headers=roles.dispatcher).json()
        assert [p["id"] for p in detail["photos"]] == list(handled["photos"].values())
        assert all(p["thumbnail_url"] == f"/v1/photos/{p['id']}/thumbnail" for p in detail["photos"])

    def test_another_worker_of_the_grid_sees_a_public_category_report_whole(self, api, handled, roles) -> None:
        listed = api.get(f"/v1/incidents/{handled['id']}/photos", headers=roles.mate)
        assert listed.status_code == 200 and len(listed.json()) == 3

    def test_another_worker_does_not_see_a_residents_photo_of_a_sensitive_matter(self, api, place, roles) -> None:
        incident = report(api, place, category="dispute.family")
        own = upload(api, incident["id"], [("home.jpg", phone_jpeg(), "image/jpeg")], headers=reporter(incident))
        staff = upload(api, incident["id"], [("call.jpg", phone_jpeg(), "image/jpeg")], headers=roles.dispatcher)
        resident_photo, staff_photo = own.json()[0]["id"], staff.json()[0]["id"]
        mate = api.get(f"/v1/incidents/{incident['id']}/photos", headers=roles.mate).json()
        assert [p["id"] for p in mate] == [staff_photo]
        assert api.get(f"/v1/photos/{resident_photo}", headers=roles.mate).status_code == 404
        assert [p["id"] for p in api.get(f"/v1/incidents/{incident['id']}", headers=roles.mate).json()["photos"]] == [
            staff_photo]
        assert len(api.get(f"/v1/incidents/{incident['id']}/photos", headers=roles.worker).json()) == 2

    def test_a_worker_of_another_grid_sees_none(self, api, handled, roles) -> None:
        assert api.get(f"/v1/incidents/{handled['id']}/photos", headers=roles.outsider).status_code == 403
        for photo_id in handled["photos"].values():
            assert api.get(f"/v1/photos/{photo_id}", headers=roles.outsider).status_code == 403

    def test_planners_see_no_photos(self, api, handled, roles) -> None:
        assert api.get(f"/v1/incidents/{handled['id']}/photos", headers=roles.planner).status_code == 403
        assert api.get(f"/v1/photos/{handled['photos']['intake']}", headers=roles.planner).status_code == 403
        assert "photos" not in api.get(f"/v1/incidents/{handled['id']}", headers=roles.planner).json()

    def test_the_public_needs_the_receipt_and_the_reporter_sees_their_own(self, api, handled) -> None:
        assert api.get(f"/v1/incidents/{handled['id']}/photos").status_code == 401
        assert api.get(f"/v1/photos/{handled['photos']['intake']}").status_code == 401
        mine = api.get(f"/v1/incidents/{handled['id']}/photos", headers=reporter(handled))
        assert mine.status_code == 200 and [p["id"] for p in mine.json()] == [handled["photos"]["intake"]]
        assert "by" not in mine.json()[0]
        assert api.get(f"/v1/photos/{handled['photos']['intake']}", headers=reporter(handled)).status_code == 200
        assert api.get(f"/v1/photos/{handled['photos']['intake']}",
                       params={"receipt": handled["receipt"]}).status_code == 200
        assert api.get(f"/v1/photos/{handled['photos']['after']}", headers=reporter(handled)).status_code == 404
        detail = api.get(f"/v1/incidents/{handled['id']}", headers=reporter(handled)).json()
        assert [p["id"] for p in detail["photos"]] == [handled["photos"]["intake"]]

    def test_a_wrong_receipt_sees_nothing(self, api, handled, place) -> None:
        other = report(api, place)
        wrong = {"X-Receipt": other["receipt"]}
        assert api.get(f"/v1/incidents/{handled['id']}/photos", headers=wrong).status_code == 403
        assert api.get(f"/v1/photos/{handled['photos']['intake']}", headers=wrong).status_code == 403
        assert upload(api, handled["id"], [("a.jpg", phone_jpeg(), "image/jpeg")],
                      headers=wrong).status_code == 403

    def test_unknown_photo_ids_are_not_found(self, api) -> None:
        assert api.get("/v1/photos/../../etc/passwd", headers=ADMIN).status_code == 404
        assert api.get("/v1/photos/0123456789abcdef01234567", headers=ADMIN).status_code == 404
        assert api.get("/v1/photos/not-an-id/thumbnail", headers=ADMIN).status_code == 404


class TestWhoAdds:
    def test_the_reporter_adds_intake_photos_only_and_only_for_a_while(self, api, place, roles) -> None:
        incident = report(api, place)
        jpeg = [("a.jpg", phone_jpeg(), "image/jpeg")]
        assert upload(api, incident["id"], jpeg).status_code == 401
        assert upload(api, incident["id"], jpeg, "before", reporter(incident)).status_code == 403
        store, coverage = api.app.state.store, api.app.state.coverage.get()
        later = datetime.fromisoformat(incident["reported_at"]) + access.INTAKE_PHOTO_WINDOW + timedelta(minutes=1)
        with pytest.raises(Forbidden, match="分钟后不能再补充照片"):
            photos.attach_photos(store=store, coverage=coverage, incident_id=incident["id"], files=jpeg,
                                 stage="intake", actor=Actor(PUBLIC), receipt=incident["receipt"], now=later)
        assert stored_state(api, incident["id"])[0] == []

    def test_staff_roles(self, api, place, roles) -> None:
        incident = report(api, place)
        jpeg = [("a.jpg", phone_jpeg(), "image/jpeg")]
        assert upload(api, incident["id"], jpeg, headers=roles.planner).status_code == 403
        assert upload(api, incident["id"], jpeg, headers=roles.outsider).status_code == 403
        refused = upload(api, incident["id"], jpeg, headers=roles.worker)  # a resident's report: not theirs
        assert refused.status_code == 403 and "本人上报" in refused.json()["detail"]
        for action in ("accept", "dispatch"):
            assert act(api, incident, action, roles.dispatcher).status_code == 200
        assert upload(api, incident["id"], jpeg, "before", roles.mate).status_code == 201  # may start, so may show
        assert upload(api, incident["id"], jpeg, "before", roles.outsider).status_code == 403

    def test_a_worker_adds_intake_photos_to_their_own_patrol_report(self, api, place, roles) -> None:
        found = api.post("/v1/incidents", headers=roles.worker, json={
            "category": "sanitation.cleaning", "description": "巡查发现垃圾堆放", "lon": place.lon, "lat": place.lat})
        assert found.status_code == 201, found.text
        assert upload(api, found.json()["id"], [("a.jpg", phone_jpeg(), "image/jpeg")],
                      headers=roles.worker).status_code == 201
        assert upload(api, found.json()["id"], [("a.jpg", phone_jpeg(), "image/jpeg")],
                      headers=roles.mate).status_code == 403


def test_the_history_says_who_added_how_many_of_which_stage(api, handled, roles) -> None:
    history = api.get(f"/v1/incidents/{handled['id']}/history", headers=roles.dispatcher).json()
    added = [e for e in history if e["action"] == photos.PHOTO_ACTION]
    assert [(e["actor"], e["note"]) for e in added] == [
        ("public", "上报照片 1 张"), (f"worker:{roles.worker_code}", "处置前照片 1 张"),
        (f"worker:{roles.worker_code}", "处置后照片 1 张")]
    assert all(e["from_status"] == e["to_status"] for e in added)
    assert len(str(history)) < 10_000  # notes only, never the bytes


def test_photos_are_kept_beside_the_store(api, handled, incident_db) -> None:
    """GeoPackage: a private folder beside the file, one file per photo named by its id; PostGIS: bytea rows."""
    photo_id = handled["photos"]["intake"]
    rows = query_raw(incident_db, "SELECT incident_id, stage, role FROM incident_photos WHERE id = ?", (photo_id,))
    assert [tuple(r) for r in rows] == [(handled["id"], "intake", PUBLIC)]
    store = api.app.state.store
    if hasattr(store, "path"):
        folder = photo_folder(store.path)
        assert folder.stat().st_mode & 0o777 == 0o700
        files = sorted(p.name for p in folder.rglob(f"{photo_id}*"))
        assert files == [f"{photo_id}.jpg", f"{photo_id}.thumb.jpg"]
        assert all(p.stat().st_mode & 0o777 == 0o600 for p in folder.rglob(f"{photo_id}*"))
    else:
        [(size,)] = query_raw(incident_db, "SELECT length(image) FROM incident_photos WHERE id = ?", (photo_id,))
        assert size == len(store.photo_bytes(photo_id))


# Open311 ------------------------------------------------------------------------------------------------

class TestOpen311:
    def test_media_upload_and_media_url(self, api, place) -> None:
        sent = api.post("/open311/v2/requests.json", data={
            "service_code": "infra.streetlight", "lat": str(place.lat), "long": str(place.lon), "description": "路灯坏了"},
            files=[("media", ("IMG_0002.JPG", phone_jpeg(), "image/jpeg"))])
        assert sent.status_code == 201, sent.text
        request_id = sent.json()[0]["service_request_id"]
        [shown] = api.get(f"/open311/v2/requests/{request_id}.json").json()
        assert shown["media_url"].startswith("http") and shown["media_url"].endswith(".jpg")
        listed = {r["service_request_id"]: r for r in api.get("/open311/v2/requests.json",
                                                              params={"service_code": "infra.streetlight"}).json()}
        assert listed[request_id]["media_url"] == shown["media_url"]
        media = api.get(shown["media_url"])
        assert media.status_code == 200 and media.headers["content-type"] == "image/jpeg"
        assert media.headers["cache-control"].startswith("public")
        thumb = assert_bare(media.content)
        assert max(thumb.size) <= images.THUMB_SIDE and thumb.size == (200, 300)
        photo_id = shown["media_url"].rsplit("/", 1)[1].removesuffix(".jpg")
        assert api.get(f"/open311/v2/media/{photo_id}.jpg").content == api.get(
            f"/v1/photos/{photo_id}/thumbnail", headers=ADMIN).content  # the thumbnail, never the full photo
        history = api.get(f"/v1/incidents/{request_id}/history", headers=ADMIN).json()
        assert [e["note"] for e in history if e["action"] == "photo"] == ["上报照片 1 张"]

    def test_a_sensitive_category_never_has_public_media(self, api, place) -> None:
        sent = api.post("/open311/v2/requests.json", data={
            "service_code": "dispute.family", "lat": str(place.lat), "long": str(place.lon), "description": "家庭纠纷"},
            files=[("media", ("a.jpg", phone_jpeg(), "image/jpeg"))])
        assert sent.status_code == 201, sent.text
        request_id = sent.json()[0]["service_request_id"]
        assert api.get(f"/open311/v2/requests/{request_id}.json").status_code == 404
        [photo] = api.get(f"/v1/incidents/{request_id}/photos", headers=ADMIN).json()
        assert api.get(f"/open311/v2/media/{photo['id']}.jpg").status_code == 404

    def test_other_stages_and_cancelled_reports_have_no_public_media(self, api, handled, place, roles) -> None:
        for stage in ("before", "after"):
            assert api.get(f"/open311/v2/media/{handled['photos'][stage]}.jpg").status_code == 404
        incident = report(api, place)
        [photo] = upload(api, incident["id"], [("a.jpg", phone_jpeg(), "image/jpeg")],
                         headers=reporter(incident)).json()
        assert api.get(f"/open311/v2/media/{photo['id']}.jpg").status_code == 200
        assert act(api, incident, "cancel", roles.dispatcher, note="不当图片").status_code == 200
        assert api.get(f"/open311/v2/media/{photo['id']}.jpg").status_code == 404

    def test_bad_media_refuses_the_request_and_stores_nothing(self, api, place) -> None:
        total = api.get("/v1/incidents", headers=ADMIN, params={"limit": 1}).json()["total"]
        refused = api.post("/open311/v2/requests.json", data={
            "service_code": "infra.streetlight", "lat": str(place.lat), "long": str(place.lon)},
            files=[("media", ("photo.jpg", b"not a photo at all", "image/jpeg"))])
        assert refused.status_code == 422 and "不是可识别的图片" in refused.json()["detail"]
        assert api.get("/v1/incidents", headers=ADMIN, params={"limit": 1}).json()["total"] == total
        other = api.post("/open311/v2/requests.json", data={"service_code": "infra.streetlight", "lat": str(place.lat),
                                                             "long": str(place.lon)},
                         files=[("attachment", ("a.txt", b"x", "text/plain"))])
        assert other.status_code == 422 and "除 media（照片）外" in other.json()["detail"]

    def test_without_media_there_is_no_media_url(self, api, place) -> None:
        sent = api.post("/open311/v2/requests.json", data={"service_code": "infra.sign", "lat": str(place.lat),
                                                           "long": str(place.lon), "description": "路牌"})
        [shown] = api.get(f"/open311/v2/requests/{sent.json()[0]['service_request_id']}.json").json()
        assert shown["media_url"] is None


def test_the_photo_route_takes_photo_sized_bodies_and_intake_stays_small(api, place, roles) -> None:
    """Photo-sized bodies (16 MB here) pass the photo route's body limit; JSON intake keeps its own small limit."""
    incident = report(api, place, category="infra.sign")
    big = b"\xff\xd8\xff" + b"\x00" * (images.MAX_PHOTO_BYTES - 10)  # under 8 MB each: refused as unreadable only
    answer = upload(api, incident["id"], [(f"{i}.jpg", big, "image/jpeg") for i in range(2)], headers=roles.dispatcher)
    assert answer.status_code == 422, answer.text[:200]
    huge = api.post("/v1/incidents", content=b"{" + b" " * (1 << 20), headers={"Content-Type": "application/json"})
    assert huge.status_code == 413
