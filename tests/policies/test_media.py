"""Policy, "Safeguarding and child protection": "photographs, video recordings cannot be
taken". Through a running gateway: a camera photo is held for a line manager (or refused
when so configured), a small signature logo shown in the body passes, a video named
``notes.txt`` is found by its content, and the register notes each one's type, size and
SHA-256. The byte-level checks (sniffing, crafted EXIF) follow at the end.
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient
from support.delivery import until
from support.harness import RunningGateway, message
from support.held import arrived_for, queue_id, record_of
from support.subprocess_gateway import run_cli
from support.upstream import Upstream
from support.web import ADMIN as WEB_ADMIN
from support.web import add_account, signed_in

from filters.media import find_media, reason_words
from gateway.mail.media import Camera, camera, sniff
from gateway.register.record_text import show_text
from gateway.settings.web import WebSettings
from gateway.web.app import create_app
from gateway.web.console import Console

StartGateway = Callable[..., Awaitable[RunningGateway]]
STAFF = "alice@c4f.example"
MANAGER = "mona@c4f.example"
CONTACT = "j.smith@partner.test"
CHAIN = ["sender", "disclosure", "media", "approval", "disclaimer"]
SUBJECT = "[consent:obtained] Contact session"  # nothing else would hold it


def camera_jpeg(make: bytes = b"Canon", model: bytes = b"Canon EOS 250D") -> bytes:
    """A JPEG whose APP1 Exif block names a camera (Make, Model), then a scan to its end."""
    make_z, model_z = make + b"\x00", model + b"\x00"
    strings = 8 + 2 + 2 * 12 + 4  # after the TIFF header and an IFD of two entries
    tiff = b"II*\x00" + struct.pack("<IH", 8, 2)
    tiff += struct.pack("<HHII", 0x010F, 2, len(make_z), strings)
    tiff += struct.pack("<HHII", 0x0110, 2, len(model_z), strings + len(make_z))
    tiff += struct.pack("<I", 0) + make_z + model_z
    app1 = b"Exif\x00\x00" + tiff
    quant = b"\x00" + bytes(range(64))
    return (
        b"\xff\xd8\xff\xe1"
        + struct.pack(">H", len(app1) + 2)
        + app1
        + b"\xff\xdb"
        + struct.pack(">H", len(quant) + 2)
        + quant
        + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00"
        + bytes(range(1, 255)) * 40
        + b"\xff\xd9"
    )


def mp4(size: int = 50_000) -> bytes:
    """The start of an MP4 file (ftyp box, brand isom) and its media data."""
    ftyp = struct.pack(">I", 24) + b"ftypisom" + b"\x00\x00\x02\x00" + b"isomiso2"
    return ftyp + struct.pack(">I", size - 24) + b"mdat" + bytes(size - 32)


def png(size: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + bytes(size - 16)


async def _gateway(start_gateway: StartGateway, upstream: Upstream, **media: Any) -> RunningGateway:
    config = {"pipeline": {"filters": CHAIN}, "filter": {"media": media}}
    gw = await start_gateway(upstream=upstream, config=config)
    gw.add_staff(MANAGER, role="manager")
    gw.add_staff(STAFF, managers=[MANAGER])
    return gw


def with_photo(photo: bytes) -> EmailMessage:
    msg = message(STAFF, [CONTACT], subject=SUBJECT)
    msg.add_attachment(photo, maintype="image", subtype="jpeg", filename="IMG_0412.jpg")
    return msg


async def test_a_camera_photo_is_held_and_the_register_notes_its_type_size_and_digest(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await _gateway(start_gateway, upstream)
    photo = camera_jpeg()
    errors, reply = await gw.send(STAFF, [CONTACT], with_photo(photo))
    assert errors == {}
    assert "held for approval (photo from a camera (Canon EOS 250D))" in reply, reply
    qid = queue_id(reply)
    [held] = gw.gateway.holds.pending()
    assert held.queue_id == qid
    await until(lambda: arrived_for(upstream.arrived, STAFF))
    [notice] = arrived_for(upstream.arrived, STAFF)
    assert b"Next time: photographs and video always wait for a line manager" in notice.content
    await asyncio.sleep(0.3)
    assert arrived_for(upstream.arrived, CONTACT) == []
    record = record_of(gw, qid)
    assert record.followups[0].data["reasons"] == ["photo from a camera (Canon EOS 250D)"]
    [attachment] = record.data["attachments"]
    assert attachment == {
        "name": "IMG_0412.jpg",
        "type": "image/jpeg",
        "size": len(photo),
        "sha256": hashlib.sha256(photo).hexdigest(),
    }
    shown = show_text(record)
    assert f"IMG_0412.jpg (image/jpeg, {len(photo):,} bytes, SHA-256 " in shown


async def test_the_held_page_and_held_show_name_the_camera_and_nothing_else_of_its_exif(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await _gateway(start_gateway, upstream)
    photo = camera_jpeg(make=b"NIKON CORPORATION", model=b"NIKON D750")
    _, reply = await gw.send(STAFF, [CONTACT], with_photo(photo))
    qid = queue_id(reply)
    why = "photo from a camera (NIKON CORPORATION NIKON D750)"

    shown = await asyncio.to_thread(
        run_cli, "held", "show", qid, "--by", MANAGER, "--config", gw.config_path
    )
    assert shown.returncode == 0, shown.stderr
    assert f"Held because:     {why}" in shown.stdout.splitlines()

    console = Console.open(gw.settings, web=WebSettings(require_totp=()))
    try:
        add_account(console.store, WEB_ADMIN, "admin")
        with TestClient(create_app(console), base_url="https://console.test") as client:
            signed_in(client, WEB_ADMIN)
            listed = client.get("/held").text
            page = client.get(f"/held/{qid}").text
    finally:
        console.close()
    assert f"<td>{why}" in listed
    assert f"<dt>Why it is held</dt><dd>{why}</dd>" in page


async def test_a_camera_photo_is_refused_citing_the_policy_when_set_to_refuse(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await _gateway(start_gateway, upstream, action="refuse")
    with pytest.raises(aiosmtplib.SMTPDataError) as caught:
        await gw.send(STAFF, [CONTACT], with_photo(camera_jpeg()))
    assert caught.value.code == 550
    text = caught.value.message
    assert text.startswith("5.7.1 Photographs and video recordings cannot be sent"), text
    assert '"photographs, video recordings cannot be taken"' in text
    assert gw.gateway.holds.pending() == []
    await asyncio.sleep(0.3)
    assert arrived_for(upstream.arrived, CONTACT) == []


async def test_a_small_signature_logo_in_multipart_related_passes(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await _gateway(start_gateway, upstream)
    logo = png(2048)
    msg = message(STAFF, [CONTACT], subject=SUBJECT)
    msg.add_alternative('<p>Hello.</p><p><img src="cid:logo@c4f"></p>', subtype="html")
    html = msg.get_payload()[1]
    html.add_related(logo, maintype="image", subtype="png", cid="<logo@c4f>")
    errors, reply = await gw.send(STAFF, [CONTACT], msg)
    assert errors == {} and "held" not in reply, reply
    await until(lambda: arrived_for(upstream.arrived, CONTACT))
    [sent] = arrived_for(upstream.arrived, CONTACT)
    assert b"multipart/related" in sent.content
    assert gw.gateway.holds.pending() == []

    # The same image, larger than inline_max_bytes, is held.
    msg.get_payload()[1].get_payload()[1].set_content(
        png(30_000), maintype="image", subtype="png", cid="<logo@c4f>"
    )
    errors, reply = await gw.send(STAFF, [CONTACT], msg)
    assert "held for approval (photo or video attached)" in reply, reply


async def test_a_video_named_notes_txt_is_found_by_its_content(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gw = await _gateway(start_gateway, upstream)
    video = mp4()
    msg = message(STAFF, [CONTACT], subject=SUBJECT)
    msg.add_attachment(video, maintype="application", subtype="octet-stream", filename="notes.txt")
    part = msg.get_payload()[1]
    part.replace_header("Content-Type", 'text/plain; name="notes.txt"')
    errors, reply = await gw.send(STAFF, [CONTACT], msg)
    assert errors == {}
    assert "held for approval (photo or video attached)" in reply, reply
    [attachment] = record_of(gw, queue_id(reply)).data["attachments"]
    assert attachment == {
        "name": "notes.txt",
        "type": "video/mp4",
        "declared_type": "text/plain",
        "size": len(video),
        "sha256": hashlib.sha256(video).hexdigest(),
    }


# --- the bytes ---


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (camera_jpeg(), "image/jpeg"),
        (png(100), "image/png"),
        (b"GIF89a" + bytes(40), "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(40), "image/webp"),
        (b"II*\x00" + bytes(40), "image/tiff"),
        (b"\x00\x00\x00\x18ftypheic" + bytes(40), "image/heic"),
        (b"\x00\x00\x00\x18ftypqt  " + bytes(40), "video/quicktime"),
        (mp4(100), "video/mp4"),
        (b"RIFF\x00\x00\x00\x00AVI LIST" + bytes(40), "video/x-msvideo"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm" + bytes(40), "video/webm"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x82\x88matroska" + bytes(40), "video/x-matroska"),
        (b"\x00\x00\x00\x18ftypM4A " + bytes(40), ""),  # audio
        (b"%PDF-1.4\n" + bytes(40), ""),
        (b"GIF is how we say it\r\n", ""),
        (b"BM: the board meeting notes\r\n", ""),
    ],
)
def test_sniff_names_images_and_videos_by_their_first_bytes(data: bytes, expected: str) -> None:
    assert sniff(data) == expected


def test_camera_reads_make_and_model_and_survives_crafted_lengths() -> None:
    assert camera(camera_jpeg()) == Camera("Canon", "Canon EOS 250D")
    assert camera(png(100)) is None
    plain = b"\xff\xd8\xff\xdb\x00\x04\x00\x00\xff\xda" + bytes(100)  # no EXIF at all
    assert camera(plain) is None
    good = camera_jpeg()
    # Lengths and offsets pointing past the end, truncation at every byte: never an error.
    huge = good[:4] + b"\xff\xff" + good[6:]
    far = good.replace(
        struct.pack("<HHII", 0x010F, 2, 6, 38), struct.pack("<HHII", 0x010F, 2, 6, 0xFFFFFFF0)
    )
    many = good.replace(struct.pack("<IH", 8, 2), struct.pack("<IH", 8, 0xFFFF))
    for data in (huge, far, many, *(good[:n] for n in range(len(good) // 4))):
        camera(data)
    assert camera(far) == Camera("", "Canon EOS 250D")


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([b"\xff\xd8", b"\xff\xd8\xff\xe1", b"II*\x00", b"MM\x00*"]),
    st.binary(max_size=400),
)
def test_camera_never_fails_on_crafted_bytes(start: bytes, rest: bytes) -> None:
    """Whatever follows a JPEG or TIFF start, the answer is a camera or None, at once."""
    for data in (start + rest, camera_jpeg()[:40] + rest):
        found = camera(data)
        assert found is None or isinstance(found, Camera)
        assert isinstance(sniff(data), str)


def test_a_photo_inside_a_forwarded_message_is_found() -> None:
    inner = with_photo(camera_jpeg())
    outer = message(STAFF, [CONTACT], subject="Fwd")
    outer.add_attachment(inner)
    [found] = find_media(outer.as_bytes().replace(b"\n", b"\r\n"))
    assert (found.type, found.camera, found.camera_name) == ("image/jpeg", True, "Canon EOS 250D")


@pytest.mark.parametrize(
    ("make", "model", "name"),
    [
        ("Canon", "Canon EOS 250D", "Canon EOS 250D"),  # the make said once
        ("Apple", "iPhone 12", "Apple iPhone 12"),
        ("", "  DMC-FZ  1000 ", "DMC-FZ 1000"),
        ("Fujifilm", "X-T3 \u00e9dition", "Fujifilm X-T3 ?dition"),  # ASCII, for SMTP replies
        ("Make", "M" * 200, "Make " + "M" * 72 + "..."),
    ],
)
def test_a_camera_is_named_by_its_make_and_model(make: str, model: str, name: str) -> None:
    assert Camera(make, model).name == name


def test_the_hold_reason_names_each_camera_and_says_what_else_was_found() -> None:
    nikon = camera_jpeg(make=b"NIKON CORPORATION", model=b"NIKON D750")
    cases = [
        ([camera_jpeg()], "photo from a camera (Canon EOS 250D)"),
        (
            [camera_jpeg(), nikon, camera_jpeg()],
            "photos from cameras (Canon EOS 250D and NIKON CORPORATION NIKON D750)",
        ),
        ([camera_jpeg(), mp4()], "photo from a camera (Canon EOS 250D) and other photos or video"),
        ([png(30_000), mp4()], "photo or video attached"),
    ]
    for attachments, words in cases:
        msg = message(STAFF, [CONTACT], subject=SUBJECT)
        for data in attachments:
            msg.add_attachment(data, maintype="application", subtype="octet-stream")
        assert reason_words(find_media(msg.as_bytes().replace(b"\n", b"\r\n"))) == words


# --- the settings ---


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (
            lambda text: text + '\n[filter.media]\naction = "delete"\n',
            "filter.media.action: must be 'hold' or 'refuse', not 'delete'",
        ),
        (
            lambda text: text + "\n[filter.media]\ninline_max_bytes = -1\n",
            "filter.media.inline_max_bytes: expected a number of bytes, 0 to 10 MB",
        ),
        (
            lambda text: text.replace('"media", "approval"', '"approval", "media"'),
            "pipeline.filters: approval must come after media",
        ),
    ],
    ids=["action", "inline_max_bytes", "order"],
)
def test_check_config_names_a_wrong_media_setting(
    tmp_path: Path, edit: Callable[[str], str], error: str
) -> None:
    done = run_cli("init", "--dir", tmp_path / "dev")
    assert done.returncode == 0, done.stderr
    config = tmp_path / "dev" / "gateway.toml"
    text = config.read_text()
    assert '"disclosure", "media", "approval", "disclaimer"]' in text  # the default chain
    config.write_text(edit(text))
    checked = run_cli("check-config", "--config", config)
    assert (checked.returncode, checked.stdout) == (1, "")
    assert checked.stderr.splitlines() == [
        f"c4f-gateway check-config: config error: {config}: {error}"
    ]
