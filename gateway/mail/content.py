"""What a message's octets are held in.

``bytes``, or the ``bytearray`` the message was received into, which the pipeline edits
in place (:mod:`gateway.mail.splices`): a large message is then never held twice. Code
that reads a message takes either; code that keeps a piece of it (a header field, a
cache key) keeps ``bytes``.
"""

from __future__ import annotations

Content = bytes | bytearray


def bytes_of(content: Content, start: int, end: int) -> bytes:
    """``content[start:end]`` as bytes, copied once (a slice of a bytearray is a bytearray:
    unhashable, and a second copy to make it bytes)."""
    if isinstance(content, bytes):
        return content[start:end]
    with memoryview(content) as view:
        return view[start:end].tobytes()
