"""Every change to the database's shape since the first release, as one numbered sequence.

A database records the number of the last step it has been through in ``PRAGMA
user_version`` (:mod:`gateway.schema_version`; 0 for every release before the number
was kept). ``c4f-gateway upgrade`` takes a backup, then runs the steps after that number
in order, writing the number after each one. Each step checks whether it is needed and
is safe to run again, so an upgrade cut short (a crash, a full disk) is simply run again;
and a version-0 database, which may come from any earlier release, gets exactly the steps
it lacks.

The tables, and where each one's current shape (``CREATE TABLE IF NOT EXISTS``) lives:

- ``queue``, ``queue_rcpt``: :mod:`gateway.queue.schema`; ``queue_release``:
  :mod:`gateway.queue.release`; ``queue_lease``: :mod:`gateway.queue.leases`
- ``holds``: :mod:`gateway.holds.table`; ``hold_escalation``: :mod:`gateway.holds.escalation`
- ``register``: :mod:`gateway.register.ledger`; ``register_thread``:
  :mod:`gateway.register.threads`; ``register_index``, ``register_index_term``,
  ``register_term``: :mod:`gateway.register.index`; ``register_tally``:
  :mod:`gateway.register.tally`
- ``staff``: :mod:`gateway.directory.staff`
- ``contacts``, ``contact_audit``, ``contact_meta``, ``contact_hints``:
  :mod:`gateway.directory.contacts_sealed`
- ``web_sessions``: :mod:`gateway.web.sessions`; ``web_totp``: :mod:`gateway.web.totp`
- ``health`` (when each health check last passed): :mod:`gateway.cli.health`

A table that does not exist yet is created in its current shape by its component when
first opened, so a step touches only tables that exist. To change a table: change its
``CREATE`` statement, add a step here (and its function next to the table), and raise
:data:`gateway.schema_version.CURRENT`. The tables not named in a step below have
needed none so far: their first shape is still their shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.crypto import Keyring
from gateway.directory.contacts_sealed import step_4_seal_plaintext
from gateway.directory.staff import step_1_add_roles
from gateway.holds.table import step_3_seal_staff
from gateway.queue.schema import step_2_seal_staff
from gateway.register.ledger import step_5_index_register
from gateway.schema_version import CURRENT, DatabaseRefused
from gateway.store import Store


@dataclass(frozen=True)
class Keys:
    """The keys steps seal with: the spool key and the register's master key."""

    spool: Keyring
    register: Keyring


@dataclass(frozen=True)
class Step:
    number: int
    tables: tuple[str, ...]
    what: str
    run: Callable[[Store, Keys], object]


STEPS: tuple[Step, ...] = (
    Step(
        1,
        ("staff",),
        "staff accounts get a role and line managers",
        lambda store, keys: step_1_add_roles(store),
    ),
    Step(
        2,
        ("queue",),
        "the sender's login in the queue is sealed (PRIV-1)",
        lambda store, keys: step_2_seal_staff(store, keys.spool),
    ),
    Step(
        3,
        ("holds",),
        "the sender's login in held messages is sealed and found by keyed hash (PRIV-1)",
        lambda store, keys: step_3_seal_staff(store, keys.spool),
    ),
    Step(
        4,
        ("contacts", "contact_audit", "contact_hints"),
        "contacts and their change history are sealed (PRIV-1)",
        lambda store, keys: step_4_seal_plaintext(store, keys.register),
    ),
    Step(
        5,
        ("register_index", "register_index_term", "register_term", "register_tally"),
        "the register's index, so lists and summaries need not decrypt every entry",
        lambda store, keys: step_5_index_register(store, keys.register),
    ),
)


def pending(version: int) -> tuple[Step, ...]:
    """The steps a database at ``version`` still needs."""
    if version > CURRENT:
        raise DatabaseRefused(
            f"database schema version {version} is newer than this gateway's ({CURRENT})"
        )
    return STEPS[version:]


def upgrade(store: Store, keys: Keys, on_step: Callable[[Step], object] = lambda step: None) -> int:
    """Run the steps ``store`` (opened with ``check_version=False, exclusive=True``) still
    needs, recording each one's number as it completes. Returns the new version."""
    version = store.version
    for step in pending(version):
        step.run(store, keys)
        store.query(f"PRAGMA user_version = {step.number}")
        on_step(step)
        version = step.number
    store.version = version
    return version
