"""``c4f-gateway staff``: accounts managed from the command line, passwords never shown.

Policy, "Storage of information": kept in a secure place. The password goes in on
standard input (``--password-stdin``) or a prompt, is stored only as a scrypt hash, and
appears in no output and nowhere in the database file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.harness import staff_commands_config
from support.subprocess_gateway import run_cli

from gateway.directory.staff import StaffDirectory, StaffMember
from gateway.register.criteria import Filters
from gateway.register.ledger import Register
from gateway.settings import load
from gateway.store import Store

ALICE = "alice@c4f.example"
MANAGER = "mo@c4f.example"
FIRST = "first secret pass phrase 41"
SECOND = "second secret pass phrase 42"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return staff_commands_config(tmp_path)


def staff(config: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    done = run_cli("staff", *args, "--config", config, stdin=stdin)
    return done.returncode, done.stdout, done.stderr


def authenticate(config: Path, login: str, password: str) -> bool:
    settings = load(config)
    store = Store(settings.storage.database)
    try:
        staff = StaffDirectory(store, cost=settings.auth.password_hash_cost)
        return staff.authenticate(login, password) is not None
    finally:
        store.close()


def database_bytes(config: Path) -> bytes:
    db = load(config).storage.database
    return b"".join(p.read_bytes() for p in (db, db.with_name(db.name + "-wal")) if p.exists())


def test_staff_lifecycle_and_the_password_never_shows(config: Path) -> None:
    outputs: list[str] = []

    def ok(*args: str, stdin: str | None = None) -> str:
        code, out, err = staff(config, *args, stdin=stdin)
        outputs.extend((out, err))
        assert code == 0, err
        return out

    assert "no staff accounts yet" in ok("list")
    ok("add", MANAGER, "--role", "manager", "--password-stdin", stdin=SECOND + "\n")
    added = ok(
        "add",
        "Alice@C4F.example",
        *("--alias", "A.Smith@c4f.example", "--manager", MANAGER, "--password-stdin"),
        stdin=FIRST + "\n",
    )
    assert added == f"added {ALICE}\n"
    assert authenticate(config, ALICE, FIRST)

    listed = ok("list")
    [row] = [ln for ln in listed.splitlines() if ln.startswith(ALICE)]
    assert row.split()[:4] == [ALICE, "staff", "a.smith@c4f.example", MANAGER]

    assert "aliases of alice@c4f.example: x@c4f.example" in ok("aliases", ALICE, "x@c4f.example")
    assert "x@c4f.example" in ok("list")
    assert "is now admin" in ok("role", ALICE, "admin")

    assert "password changed" in ok("passwd", ALICE, "--password-stdin", stdin=SECOND + "\n")
    assert authenticate(config, ALICE, SECOND)
    assert not authenticate(config, ALICE, FIRST)

    on_disk = database_bytes(config)
    assert b"scrypt$" in on_disk  # the hashes are there ...
    for pw in (FIRST, SECOND):  # ... the passwords are not
        assert pw.encode() not in on_disk
        assert not any(pw in text for text in outputs)

    assert ok("remove", ALICE) == f"removed {ALICE}\n"
    assert ALICE not in ok("list")
    assert not authenticate(config, ALICE, SECOND)


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("add", "alice", "--password-stdin"), FIRST, "the login is the staff member's mail"),
        (("add", ALICE, "--password-stdin"), "short\n", "at least 12 characters"),
        (("add", ALICE), None, "no terminal to ask for the password: use --password-stdin"),
        (
            ("add", ALICE, "--manager", "nobody@c4f.example", "--password-stdin"),
            FIRST,
            "no account",
        ),
        (
            ("add", ALICE, "--manager", ALICE.upper(), "--password-stdin"),
            FIRST,
            "alice@c4f.example cannot be their own line manager",
        ),
        (("passwd", "nobody@c4f.example", "--password-stdin"), FIRST, "no account"),
        (("remove", "nobody@c4f.example"), None, "no account nobody@c4f.example"),
        (("aliases", "nobody@c4f.example", "x@c4f.example"), None, "no account"),
    ],
    ids=[
        "not_an_address",
        "short",
        "no_tty",
        "unknown_manager",
        "own_manager",
        "passwd",
        "remove",
        "aliases",
    ],
)
def test_staff_mistakes_are_one_line_errors(
    config: Path, args: tuple[str, ...], stdin: str | None, message: str
) -> None:
    code, out, err = staff(config, *args, stdin=stdin)
    assert code == 2
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith("c4f-gateway staff: error: ")
    assert message in line
    if stdin:
        assert stdin.strip() not in err


def test_adding_an_existing_account_is_refused(config: Path) -> None:
    assert staff(config, "add", ALICE, "--password-stdin", stdin=FIRST)[0] == 0
    code, _out, err = staff(config, "add", ALICE, "--password-stdin", stdin=SECOND)
    assert (code, err.strip()) == (2, f"c4f-gateway staff: error: {ALICE} already exists")
    assert authenticate(config, ALICE, FIRST)  # unchanged


def member(config: Path, login: str) -> StaffMember | None:
    store = Store(load(config).storage.database)
    try:
        return StaffDirectory(store).get(login)
    finally:
        store.close()


def admin_trail(config: Path) -> list[tuple[str, dict[str, object]]]:
    """The register's admin trail as (action, details)."""
    settings = load(config)
    store = Store(settings.storage.database)
    try:
        register = Register.from_settings(store, settings.register)
        return [
            (r.data["action"], r.data["details"])
            for r in register.records(Filters(kinds=("admin",)))
        ]
    finally:
        store.close()


BOSS = "bo.boss@c4f.example"


def test_staff_edit_changes_only_what_is_given(config: Path) -> None:
    for login, role in ((MANAGER, "manager"), (BOSS, "manager")):
        assert staff(config, "add", login, "--role", role, "--password-stdin", stdin=FIRST)[0] == 0
    assert (
        staff(
            config, "add", ALICE, "--alias", "a.smith@c4f.example", "--password-stdin", stdin=FIRST
        )[0]
        == 0
    )
    before = member(config, ALICE)
    assert before is not None and before.managers == ()

    code, out, err = staff(config, "edit", ALICE, "--manager", "Mo@C4F.example", "--manager", BOSS)
    assert (code, out, err) == (0, f"line managers of {ALICE}: {MANAGER}, {BOSS}\n", "")
    after = member(config, ALICE)
    assert after is not None
    assert (after.managers, after.role, after.aliases) == ((MANAGER, BOSS), "staff", before.aliases)

    code, out, _ = staff(config, "edit", ALICE, "--role", "manager", "--alias", "X@c4f.example")
    assert (code, out) == (0, f"{ALICE} is now manager\naliases of {ALICE}: x@c4f.example\n")
    after = member(config, ALICE)
    assert after is not None
    assert (after.managers, after.role, after.aliases) == (
        (MANAGER, BOSS),
        "manager",
        ("x@c4f.example",),
    )
    assert authenticate(config, ALICE, FIRST)  # the password is untouched

    code, out, _ = staff(config, "edit", ALICE, "--no-managers")
    assert (code, out) == (0, f"line managers of {ALICE}: (none)\n")
    after = member(config, ALICE)
    assert after is not None and (after.managers, after.role) == ((), "manager")

    # `staff managers` still works, on the same column.
    assert staff(config, "managers", ALICE, BOSS)[0] == 0
    assert member(config, ALICE).managers == (BOSS,)  # type: ignore[union-attr]

    edits = [(a, d) for a, d in admin_trail(config) if d.get("login") == ALICE and a != "staff add"]
    assert edits == [
        ("staff managers", {"login": ALICE, "managers": [MANAGER, BOSS]}),
        ("staff role", {"login": ALICE, "role": "manager"}),
        ("staff aliases", {"login": ALICE, "aliases": ["x@c4f.example"]}),
        ("staff managers", {"login": ALICE, "managers": []}),
        ("staff managers", {"login": ALICE, "managers": [BOSS]}),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("edit", "nobody@c4f.example", "--role", "admin"), "no account nobody@c4f.example"),
        (
            ("edit", ALICE, "--role", "admin", "--manager", "nobody@c4f.example"),
            "no account nobody@c4f.example (add line managers first)",
        ),
        (("edit", ALICE), "nothing to change: give --manager, --no-managers, --role or --alias"),
    ],
    ids=["unknown_login", "unknown_manager", "nothing"],
)
def test_staff_edit_mistakes_change_nothing(
    config: Path, args: tuple[str, ...], message: str
) -> None:
    assert staff(config, "add", MANAGER, "--password-stdin", stdin=FIRST)[0] == 0
    assert (
        staff(config, "add", ALICE, "--manager", MANAGER, "--password-stdin", stdin=FIRST)[0] == 0
    )
    trail = admin_trail(config)
    code, out, err = staff(config, *args)
    assert (code, out, err) == (2, "", f"c4f-gateway staff: error: {message}\n")
    after = member(config, ALICE)
    assert after is not None and (after.role, after.managers) == ("staff", (MANAGER,))
    assert admin_trail(config) == trail


def test_staff_edit_managers_or_no_managers_not_both(config: Path) -> None:
    assert staff(config, "add", ALICE, "--password-stdin", stdin=FIRST)[0] == 0
    code, out, err = staff(config, "edit", ALICE, "--manager", MANAGER, "--no-managers")
    assert (code, out) == (2, "")
    assert "not allowed with argument" in err
    code, _, err = staff(config, "edit", ALICE, "--role", "boss")
    assert code == 2 and "invalid choice: 'boss'" in err


def test_a_login_outside_the_centres_domains_needs_external(config: Path) -> None:
    """A personal or a partner's address as a login is most often a typing mistake."""
    outsider = "Volunteer@Example.org"
    code, out, err = staff(config, "add", outsider, "--password-stdin", stdin=FIRST)
    assert (code, out) == (2, "")
    assert err == (
        "c4f-gateway staff: error: volunteer@example.org is outside the centre's domains "
        "(c4f.example, [organisation] domains in the config): give --external if this "
        "person really sends from that address\n"
    )
    assert member(config, outsider) is None
    assert admin_trail(config) == []  # refused before anything is written

    code, out, err = staff(config, "add", outsider, "--external", "--password-stdin", stdin=FIRST)
    assert (code, out, err) == (0, "added volunteer@example.org\n", "")
    assert authenticate(config, "volunteer@example.org", FIRST)
    # The centre's own domain needs no flag, in any letter case.
    assert staff(config, "add", "bob@C4F.Example", "--password-stdin", stdin=FIRST)[0] == 0


def test_staff_add_help_explains_external(config: Path) -> None:
    out = " ".join(run_cli("staff", "add", "--help").stdout.split())
    assert "--external allow a login outside the centre's [organisation] domains" in out
