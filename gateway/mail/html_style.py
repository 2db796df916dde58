"""Whether an HTML element's own attributes hide it and what it contains.

The ``hidden`` attribute (HTML 6.1) and inline CSS that removes, hides, shrinks, clips or
moves its box: ``display:none``, ``visibility:hidden``, Outlook's ``mso-hide:all``, zero
size, opacity or font size, and the like. Read as CSS is (CSS Syntax 3: escapes, comments,
case-insensitive names), and on the side of caution: a declaration that might hide counts.
Rules in a ``<style>`` sheet are not read here.
"""

from __future__ import annotations

import re

_ESCAPE = re.compile(r"\\([0-9a-fA-F]{1,6})[ \t\r\n\f]?|\\(.)", re.DOTALL)
_COMMENT = re.compile(r"/\*.*?(?:\*/|\Z)", re.DOTALL)
_IMPORTANT = re.compile(r"!\s*important\s*$")
_ZERO = re.compile(r"[+-]?(0+\.?0*|\.0+)(%|[a-z]+)?")
_NEGATIVE = re.compile(r"-\s*[0-9.]")

_ALWAYS = {  # property -> values that hide
    "display": {"none"},
    "visibility": {"hidden", "collapse"},
    "content-visibility": {"hidden"},
    "mso-hide": {"all"},
    "color": {"transparent"},
    "position": {"absolute", "fixed"},  # can be moved out of sight
}
_ZERO_HIDES = {"opacity", "font-size", "height", "max-height", "width", "max-width"}
_HEIGHTS = ("height", "max-height")
_NOT_NONE_HIDES = {"clip", "clip-path", "transform", "mask", "mask-image", "filter"}


def hides(attrs: list[tuple[str, str | None]]) -> bool:
    """``attrs`` as html.parser gives them (lower-case names; repeats kept: any one counts)."""
    for name, value in attrs:
        if name == "hidden" or (name == "style" and value and style_hides(value)):
            return True
    return False


def style_hides(style: str) -> bool:
    declarations: dict[str, str] = {}
    text = _COMMENT.sub(" ", _ESCAPE.sub(_unescape, style)).lower()
    for declaration in text.split(";"):
        prop, colon, value = declaration.partition(":")
        if colon:
            declarations[prop.strip()] = _IMPORTANT.sub("", value).strip()
    for prop, value in declarations.items():
        if any(value.startswith(v) for v in _ALWAYS.get(prop, ())):
            return True  # "none" and "nonesuch" alike: a value we cannot read might hide
        if prop in _ZERO_HIDES and _ZERO.fullmatch(value):
            return True
        if prop in _NOT_NONE_HIDES and value not in ("none", "auto", "initial", "unset", ""):
            return True
        if prop == "text-indent" and _NEGATIVE.match(value):
            return True
    # A box with a set height that clips what does not fit can cut off what is added last.
    clips = any(declarations.get(p) in ("hidden", "clip") for p in ("overflow", "overflow-y"))
    sized = any(declarations.get(p, "auto") not in ("auto", "none") for p in _HEIGHTS)
    return clips and sized


def _unescape(m: re.Match[str]) -> str:
    if m.group(1) is not None:
        code = int(m.group(1), 16)
        return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code < 0xE000 else "\ufffd"
    return m.group(2)
