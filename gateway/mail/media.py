"""What an attachment really is: image and video types by their first bytes, and the camera
that took a photograph, from the Make/Model fields of its EXIF block.

The declared Content-Type and the file name are the sender's word; these functions read the
decoded content itself, so a video named ``notes.txt`` is still a video. Every read is
bounded and every length or offset found in the data is checked against the data before use:
a crafted file yields "unknown", never an exception or a long loop.
"""

from __future__ import annotations

from dataclasses import dataclass

# ISO base media file format (ftyp box) brands: HEIF still images, QuickTime, 3GPP, audio.
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
_HEIF_GENERIC = frozenset({b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_AUDIO_BRANDS = frozenset({b"M4A ", b"M4B ", b"M4P "})
_MAX_SEGMENTS = 64  # JPEG markers read before giving up on finding the EXIF block
_MAX_IFD_ENTRIES = 512
_MAX_FIELD = 128  # characters kept of a Make or Model value
_TAG_MAKE, _TAG_MODEL = 0x010F, 0x0110
_MAX_NAME = 80  # characters of a camera's name shown to people (hold reasons, notices)


def sniff(data: bytes) -> str:
    """The image or video type ``data`` starts like ("" when it is neither)."""
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head[:2] == b"BM" and len(head) >= 26 and head[6:10] == b"\x00\x00\x00\x00":
        return "image/bmp"
    if head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n"):
        return "image/jp2"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head[4:8] == b"ftyp":
        return _iso_bmff(head[8:12])
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska, or WebM by its DocType
        return "video/webm" if b"webm" in head else "video/x-matroska"
    if head.startswith(b"FLV\x01"):
        return "video/x-flv"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "video/x-ms-asf"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "video/mpeg"
    if len(data) > 564 and data[0] == data[188] == data[376] == data[564] == 0x47:  # MPEG-TS
        return "video/mp2t"
    return ""


def _iso_bmff(brand: bytes) -> str:
    if brand in _HEIF_BRANDS or brand in _HEIF_GENERIC:
        return "image/heic" if brand in _HEIF_BRANDS else "image/heif"
    if brand in _AVIF_BRANDS:
        return "image/avif"
    if brand in _AUDIO_BRANDS:
        return ""
    if brand == b"qt  ":
        return "video/quicktime"
    if brand.startswith(b"3g"):
        return "video/3gpp"
    return "video/mp4"


def is_media(ctype: str) -> bool:
    """An image or video type (``image/…``, ``video/…``)."""
    return ctype.split("/", 1)[0].lower() in ("image", "video")


@dataclass(frozen=True)
class Camera:
    make: str
    model: str

    @property
    def name(self) -> str:
        """Make and model as a person reads them ("Canon EOS 250D" for Make "Canon", Model
        "Canon EOS 250D"): printable ASCII only, since it goes into SMTP replies, and short."""
        make, model = self.make.strip(), self.model.strip()
        words = model if make and model.lower().startswith(make.lower()) else f"{make} {model}"
        ascii_only = "".join(c if " " <= c <= "~" else "?" for c in " ".join(words.split()))
        return ascii_only if len(ascii_only) <= _MAX_NAME else ascii_only[: _MAX_NAME - 3] + "..."


def camera(data: bytes) -> Camera | None:
    """The camera named in a JPEG's (or TIFF's) EXIF Make/Model fields, when there is one."""
    if data.startswith(b"\xff\xd8"):
        tiff = _jpeg_exif(data)
        return _tiff_camera(tiff) if tiff else None
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff_camera(data)
    return None


def _jpeg_exif(data: bytes) -> bytes:
    """The TIFF structure inside the first APP1 "Exif" segment ("" when there is none)."""
    pos = 2
    for _ in range(_MAX_SEGMENTS):
        if pos + 4 > len(data) or data[pos] != 0xFF:
            return b""
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            pos += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan, end of image: no EXIF before the pixels
            return b""
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2 or pos + 2 + length > len(data):
            return b""
        segment = data[pos + 4 : pos + 2 + length]
        if marker == 0xE1 and segment.startswith(b"Exif\x00\x00"):
            return segment[6:]
        pos += 2 + length
    return b""


def _tiff_camera(tiff: bytes) -> Camera | None:
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return None
    order: str = "little" if tiff[:2] == b"II" else "big"

    def num(at: int, size: int) -> int:
        return int.from_bytes(tiff[at : at + size], order)  # type: ignore[arg-type]

    if num(2, 2) != 42:
        return None
    ifd = num(4, 4)
    if ifd < 8 or ifd + 2 > len(tiff):
        return None
    count = min(num(ifd, 2), _MAX_IFD_ENTRIES)
    found: dict[int, str] = {}
    for i in range(count):
        entry = ifd + 2 + 12 * i
        if entry + 12 > len(tiff):
            break
        tag, kind, n = num(entry, 2), num(entry + 2, 2), num(entry + 4, 4)
        if tag not in (_TAG_MAKE, _TAG_MODEL) or kind != 2 or n == 0:  # 2: ASCII
            continue
        start = entry + 8 if n <= 4 else num(entry + 8, 4)
        if start + n > len(tiff):
            continue
        raw = tiff[start : start + min(n, _MAX_FIELD)].split(b"\x00", 1)[0]
        text = "".join(c for c in raw.decode("latin-1") if c.isprintable()).strip()
        if text:
            found[tag] = text
    if not found:
        return None
    return Camera(found.get(_TAG_MAKE, ""), found.get(_TAG_MODEL, ""))
