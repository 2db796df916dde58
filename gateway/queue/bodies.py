"""Large messages' sealed bodies, in files of their own beside the database.

A message over :data:`IN_FILE_OVER` is sealed into ``DATABASE-bodies/QUEUEID`` by the
session that accepts it, in its own thread and with its own fsync, before the queue row
is committed: under the database's write lock there is then only the row (a few hundred
octets) instead of the whole sealed message written into the write-ahead log, copied
into the database at the checkpoint and zeroed again when it is delivered.

Each file is AES-256-GCM under a key of its own, made for that message, bound to its
queue ID. The key is kept only inside the row's sealed envelope (under the spool key), so:

- the row is committed only after the file and its folder entry are on disk, so a row
  always has its body (a crash between the two leaves a file with no row: unreadable,
  since its key was never committed, and removed by :meth:`BodyFiles.sweep` at start);
- deleting the row destroys the key (``secure_delete`` zeroes it): what stays of the file
  on the disk cannot be read even with the spool key, before or after it is unlinked;
- rotating the spool key reseals the envelope, key included; the file is untouched;
- a file that is missing, truncated or altered fails its check, and the message is set
  aside as ``corrupt`` (DUR-4), never sent.

A file appears whole or not at all: it is written under a temporary name, then linked
under its own (never over another message's file).
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.errors import SpoolCorrupt
from gateway.mail.content import Content

# Bodies larger than this are kept in files. Below it the row is cheaper: one write under
# the lock against a file, its fsync and its folder's fsync per message.
IN_FILE_OVER = 64 * 1024

_NONCE = 12
_TAG = 16
_SEGMENT = 1 << 20  # encrypted and written a MiB at a time: no sealed copy of the whole
_TEMP = ".tmp-"


def bodies_folder(database: Path) -> Path:
    """Where the bodies of ``database``'s queue live: ``DATABASE-bodies`` beside it (as
    SQLite's ``-wal``), so whatever moves, backs up or restores the one finds the other."""
    return database.with_name(database.name + "-bodies")


def _aad(queue_id: str) -> bytes:
    return b"c4f-body/1:" + queue_id.encode()


class BodyFiles:
    """The folder of sealed bodies (0700, files 0600)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(mode=0o700, exist_ok=True)

    def path(self, queue_id: str) -> Path:
        if not queue_id.isalnum():  # queue IDs are hex: never a path
            raise ValueError(f"not a queue ID: {queue_id!r}")
        return self.folder / queue_id

    def write(self, queue_id: str, content: Content) -> bytes:
        """Seal ``content`` into the message's file and make it durable (file and folder
        fsynced); returns its key, for the row's sealed envelope."""
        key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(_NONCE)
        encryptor = Cipher(algorithms.AES(key), modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(_aad(queue_id))
        final = self.path(queue_id)
        temp = self.folder / (_TEMP + queue_id)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f, memoryview(content) as view:
                f.write(nonce)
                for at in range(0, len(view), _SEGMENT):
                    f.write(encryptor.update(view[at : at + _SEGMENT]))
                f.write(encryptor.finalize())
                f.write(encryptor.tag)
                f.flush()
                os.fsync(f.fileno())
            os.link(temp, final)  # FileExistsError rather than replace another's body
            self._sync_folder()
        finally:
            temp.unlink(missing_ok=True)
        return key

    def read(self, queue_id: str, key: bytes) -> bytearray:
        """The message's content; SpoolCorrupt if its file is missing or fails its check.
        Decrypted a MiB at a time into the one buffer returned (not the sealed file and
        the message in memory together); nothing is returned before the tag is checked."""
        try:
            f = self.path(queue_id).open("rb")
        except FileNotFoundError as exc:
            raise SpoolCorrupt("its body file is missing") from exc
        with f:
            length = os.fstat(f.fileno()).st_size - _NONCE - _TAG
            if length < 0:
                raise SpoolCorrupt("its body file is truncated")
            out = bytearray(length)
            try:
                decryptor = Cipher(algorithms.AES(key), modes.GCM(f.read(_NONCE))).decryptor()
                decryptor.authenticate_additional_data(_aad(queue_id))
                with memoryview(out) as view:
                    at = 0
                    while at < length:
                        segment = f.read(min(_SEGMENT, length - at))
                        if not segment:
                            raise SpoolCorrupt("its body file is truncated")
                        view[at : at + len(segment)] = decryptor.update(segment)
                        at += len(segment)
                decryptor.finalize_with_tag(f.read(_TAG))
            except (InvalidTag, ValueError) as exc:
                raise SpoolCorrupt(
                    "its body file failed its check (altered, truncated or another's)"
                ) from exc
        return out

    def remove(self, *queue_ids: str) -> None:
        """Unlink the files of messages whose rows are gone (committed): their keys went
        with the rows. A message kept in its row has no file: nothing happens."""
        for queue_id in queue_ids:
            self.path(queue_id).unlink(missing_ok=True)

    def names(self) -> list[str]:
        """The queue IDs that have a body file, and any temporary file's name."""
        return sorted(p.name for p in self.folder.iterdir())

    def sweep(self, queued: Collection[str]) -> int:
        """Remove every file that is not the body of a row in ``queued`` (the queue's IDs):
        files of acceptances a crash cut short before their row was committed. Only while
        nothing accepts (``serve``'s start, before its workers)."""
        removed = 0
        for name in self.names():
            # Only its own files: a name that is not a queue ID is not the spool's.
            if name.startswith(_TEMP) or (name.isalnum() and name not in queued):
                (self.folder / name).unlink(missing_ok=True)
                removed += 1
        return removed

    def _sync_folder(self) -> None:
        fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
