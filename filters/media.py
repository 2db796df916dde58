"""Photographs and video recordings (policy, "Safeguarding and child protection").

"To maintain confidentiality and to ensure the safeguarding of children and vulnerable
adult photographs, video recordings cannot be taken." This filter finds every image and
video in a message: by its declared type, by its file name and by its decoded content
(:func:`gateway.mail.media.sniff`), so a video named ``notes.txt`` is found too, including
inside a forwarded message. A JPEG or TIFF whose EXIF block names a camera (Make/Model) is a
photograph whatever else is said of it.

``[filter.media] action`` decides what then happens:

- ``"hold"`` (default): ``tx.annotations["media"]`` lists what was found and the approval
  filter (which must run after this one) holds the message: "photo or video attached", or
  "photo from a camera (Canon EOS 250D)" when an EXIF block names one;
- ``"refuse"``: the message is refused, ``550 5.7.1``, with the policy's words.

A logo or signature image passes: an image inside ``multipart/related`` (shown in the
body, not attached), not marked as an attachment, no larger than ``inline_max_bytes``
(default 20 KB) once decoded, and without camera fields.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from gateway.envelope import Transaction
from gateway.errors import ConfigError, Refused
from gateway.mail import chunked, mime, transfer
from gateway.mail.content import bytes_of
from gateway.mail.media import camera, is_media, sniff
from gateway.mail.mime import Entity, MimeError
from gateway.pipeline import Content, FilterContext, checked_options

log = structlog.get_logger("filters.media")

ACTIONS = ("hold", "refuse")
DEFAULT_INLINE_MAX_BYTES = 20 * 1024
_THREAD_THRESHOLD = 1 << 20  # larger messages are read off the event loop
MAX_NESTED = 3  # forwarded messages inside forwarded messages, opened to look for media
REASON = "photo or video attached"
POLICY_CLAUSE = (
    'confidentiality policy, "Safeguarding and child protection": '
    '"photographs, video recordings cannot be taken"'
)
_EXTENSIONS = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "jpe": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "webp": "image/webp",
    "heic": "image/heic",
    "heif": "image/heif",
    "avif": "image/avif",
    "dng": "image/x-adobe-dng",
    "mp4": "video/mp4",
    "m4v": "video/mp4",
    "mov": "video/quicktime",
    "avi": "video/x-msvideo",
    "mkv": "video/x-matroska",
    "webm": "video/webm",
    "wmv": "video/x-ms-wmv",
    "3gp": "video/3gpp",
    "mpg": "video/mpeg",
    "mpeg": "video/mpeg",
    "flv": "video/x-flv",
}


@dataclass(frozen=True)
class Found:
    """One image or video: its type (by content when that says image or video)."""

    type: str
    size: int
    sha256: str
    camera: bool
    by: str  # "content", "type" or "name": what showed it to be media
    camera_name: str = ""  # its EXIF Make and Model, when it names them (Camera.name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "size": self.size,
            "sha256": self.sha256,
            "camera": self.camera,
            "by": self.by,
            "camera_name": self.camera_name,
        }


def find_media(content: Content, inline_max_bytes: int = DEFAULT_INLINE_MAX_BYTES) -> list[Found]:
    """Every photograph or video in ``content`` that is not a small inline image.

    Raises MimeError when the structure cannot be read safely (no guessing).
    """
    return _scan(content, 0, len(content), inline_max_bytes, 0)


def _scan(buf: Content, start: int, end: int, limit: int, depth: int) -> list[Found]:
    """The findings in the message ``buf[start:end]``, read in place."""
    root = mime.parse_span(buf, start, end)
    out: list[Found] = []
    _visit(buf, root, limit, depth, False, out)
    return out


def _visit(
    buf: Content, e: Entity, limit: int, depth: int, in_related: bool, out: list[Found]
) -> None:
    if e.children:
        related = in_related or e.ctype == "multipart/related"
        for child in e.children:
            _visit(buf, child, limit, depth, related, out)
        return
    if e.ctype == "message/rfc822" and depth < MAX_NESTED:
        # Read in place unless a transfer encoding must be undone first (rare).
        inner, start, end = buf, e.body_start, e.end
        if e.cte not in mime.IDENTITY:
            inner = _decoded(bytes_of(buf, start, end), e.cte)
            start, end = 0, len(inner)
        # Not a message we can read: it is judged by its bytes below.
        with contextlib.suppress(MimeError):
            out.extend(_scan(inner, start, end, limit, depth + 1))
    found = _judge(
        e, _streamed(buf, e), lambda: _decoded(bytes_of(buf, e.body_start, e.end), e.cte)
    )
    if found is None:
        return
    small_inline = in_related and e.disposition != "attachment" and found.size <= limit
    if small_inline and found.type.startswith("image/") and not found.camera:
        return
    out.append(found)


def _streamed(buf: Content, e: Entity) -> chunked.Tally:
    """Size, digest and first bytes of the decoded body, decoded in pieces in place."""
    try:
        return chunked.tally(chunked.strict_pieces(buf, e.body_start, e.end, e.cte))
    except chunked.Unstreamable:  # damaged or unusual: decoded whole, leniently
        return chunked.tally([_decoded(bytes_of(buf, e.body_start, e.end), e.cte)])


def _judge(e: Entity, body: chunked.Tally, whole: Callable[[], bytes]) -> Found | None:
    """``whole`` gives the whole decoded body, read only for an EXIF block (JPEG, TIFF)."""
    sniffed = sniff(body.head)
    by_name = _EXTENSIONS.get(_extension(e), "")
    if sniffed:
        by, ctype = "content", sniffed
    elif is_media(e.ctype):
        by, ctype = "type", e.ctype
    elif by_name:
        by, ctype = "name", by_name
    else:
        return None
    # camera() reads only a JPEG or TIFF (its EXIF offsets may point anywhere in it).
    exif = body.head[:2] == b"\xff\xd8" or body.head[:4] in (b"II*\x00", b"MM\x00*")
    taken_by = camera(whole()) if exif else None
    return Found(
        type=ctype,
        size=body.size,
        sha256=body.sha256,
        camera=taken_by is not None,
        by=by,
        camera_name=taken_by.name if taken_by else "",
    )


def _extension(e: Entity) -> str:
    name = e.disposition_params.get("filename") or e.params.get("name") or ""
    return name.rsplit(".", 1)[-1].strip().lower() if "." in name else ""


def _decoded(body: bytes, cte: str) -> bytes:
    try:
        return transfer.decode_body(body, cte)
    except MimeError:
        # Damaged base64 or an unknown encoding: read what can be read, never skip it.
        try:
            return binascii.a2b_base64(body)
        except binascii.Error:
            return body


class MediaFilter:
    name = "media"

    def __init__(self, action: str = "hold", inline_max_bytes: int = DEFAULT_INLINE_MAX_BYTES):
        self.action = action
        self.inline_max_bytes = inline_max_bytes

    async def on_data(self, tx: Transaction, content: Content) -> Content:
        try:
            if len(content) > _THREAD_THRESHOLD:
                found = await asyncio.to_thread(find_media, content, self.inline_max_bytes)
            else:
                found = find_media(content, self.inline_max_bytes)
        except MimeError as exc:
            log.info("media_unreadable", queue_id=tx.queue_id, reason=exc.slug)
            raise Refused(
                554,
                "5.6.0",
                f"Cannot check the message for photographs or video: {exc.text}",
                reference="MEDIA-UNREADABLE",
            ) from exc
        if not found:
            return content
        log.info(
            "media_found",
            queue_id=tx.queue_id,
            action=self.action,
            count=len(found),
            types=sorted({f.type for f in found}),
            camera=sum(f.camera for f in found),
        )
        if self.action == "refuse":
            raise Refused(
                550,
                "5.7.1",
                f"Photographs and video recordings cannot be sent ({POLICY_CLAUSE}); "
                "remove the attachment and send again",
                reference="MEDIA",
            )
        tx.annotations["media"] = {
            "reason": reason_words(found),
            "found": [f.as_dict() for f in found],
        }
        return content


def reason_words(found: list[Found]) -> str:
    """Why the message waits, as its hold shows it: the camera when a photograph names one
    ("photo from a camera (Canon EOS 250D)"), nothing else of its EXIF block."""
    cameras = sorted({f.camera_name for f in found if f.camera_name})
    if not cameras:
        return REASON
    if len(cameras) == 1:
        words = f"photo from a camera ({cameras[0]})"
    else:
        words = f"photos from cameras ({' and '.join(cameras)})"
    return words if all(f.camera_name for f in found) else f"{words} and other photos or video"


def create(options: dict[str, Any], context: FilterContext) -> MediaFilter:
    where = checked_options(context, "media", options, ("action", "inline_max_bytes"))
    action = options.get("action", "hold")
    if action not in ACTIONS:
        raise ConfigError(f"{where}.action: must be 'hold' or 'refuse', not {action!r}")
    limit = options.get("inline_max_bytes", DEFAULT_INLINE_MAX_BYTES)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= 10 << 20:
        raise ConfigError(f"{where}.inline_max_bytes: expected a number of bytes, 0 to 10 MB")
    # The approval filter checks that it runs after this one (it reads the annotation).
    return MediaFilter(action, limit)
