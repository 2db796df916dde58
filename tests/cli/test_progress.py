"""Progress on long work (issue 15): ``register verify``, ``register purge``, ``contacts
import``, ``contacts review`` and ``backup`` draw a progress line on stderr when it is a
terminal (a real pseudo-terminal here), and write nothing of it with ``--quiet`` or into a
pipe. The answer on stdout is the same either way."""

from __future__ import annotations

import contextlib
import io
import os
import pty
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.dns_server import dns_server
from support.register import T0, accepted
from support.subprocess_gateway import gateway_command, run_cli

from gateway.cli.progress import Progress, duration, line
from gateway.register.ledger import Register
from gateway.settings import load
from gateway.settings.register import register_settings
from gateway.store import Store

pytestmark = pytest.mark.slow

ENTRIES = 520  # more than one report's worth (500): the line is drawn on the way, then at the end
CSV = (
    "kind,address,display_name,organisation,approved_by,verified_how\r\n"
    "address,a.one@cafcass.example,Ann One,Cafcass,Kim,phoned back\r\n"
    "address,b.two@cafcass.example,Bo Two,Cafcass,Kim,phoned back\r\n"
    "address,c.three@council.example,Cy Three,Council,Kim,phoned back\r\n"
)


@dataclass
class Run:
    code: int
    stdout: str
    terminal: str  # every byte written to stderr (the terminal), decoded


def in_terminal(*args: str | Path, timeout: float = 120) -> Run:
    """``c4f-gateway ARGS`` with stderr on a pseudo-terminal and stdout on a pipe."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*gateway_command(), *map(str, args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    seen = bytearray()
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the command ended and closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
    assert proc.stdout is not None
    stdout = proc.stdout.read().decode()
    proc.stdout.close()
    code = proc.wait(timeout)
    return Run(code, stdout, seen.decode())


def progress_lines(terminal: str, what: str) -> list[tuple[int, int]]:
    """(done, total) of every drawing of ``what``'s progress line, in order."""
    return [
        (int(m[1]), int(m[2])) for m in re.finditer(rf"\r{re.escape(what)}: (\d+)/(\d+) ", terminal)
    ]


def assert_progress(run: Run, what: str, unit: str) -> list[tuple[int, int]]:
    assert run.code == 0, run.stdout + run.terminal
    drawn = progress_lines(run.terminal, what)
    assert drawn, run.terminal
    done, total = drawn[-1]
    assert done == total > 0  # it ends at the total
    assert all(d <= t for d, t in drawn) and [d for d, _ in drawn] == sorted(d for d, _ in drawn)
    # The last drawing says how long it took and ends the line (the terminal shows the
    # line break as \r\n), so what follows starts on a line of its own.
    last = rf"\r{re.escape(what)}: {total}/{total} {unit} \(100%\), [^\r\n]*done in [^\r\n]*\r\n"
    assert re.search(last, run.terminal), run.terminal
    return drawn


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A gateway folder with ENTRIES register entries (from 2023, past retention), a
    checkpoint, and an empty contact list."""
    folder = tmp_path_factory.mktemp("progress")
    config = folder / "gateway.toml"
    config.write_text('[upstream]\nhost = "smtp.example"\n', encoding="utf-8")
    settings = load(config)
    rs = register_settings(settings)
    Register.create_keys(rs)
    store = Store(settings.storage.database)
    reg = Register.from_settings(store, rs)
    with store.transaction() as conn:
        for i in range(ENTRIES):
            reg.accepted(conn, accepted(f"Q{i + 1}", T0 + 60 * i))
    reg.checkpoint()
    store.close()
    (folder / "contacts.csv").write_text(CSV, encoding="utf-8")
    return folder


@pytest.fixture
def gw(template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the template; returns its config file."""
    folder = tmp_path / "gw"
    shutil.copytree(template, folder, ignore=shutil.ignore_patterns("*.lock"))
    return folder / "gateway.toml"


def _commands(config: Path, backup_to: str) -> dict[str, tuple[list[str | Path], str, str]]:
    """Each command with the progress line it draws and its unit."""
    folder = config.parent
    return {
        "verify": (["register", "verify", "--config", config], "register verify", "entries"),
        "purge": (
            ["register", "purge", "--by", "Kim", "--config", config],
            "register purge: reading",
            "entries",
        ),
        "import": (
            ["contacts", "import", folder / "contacts.csv", "--by", "Kim", "--config", config],
            "contacts import",
            "rows",
        ),
        "backup": (
            ["backup", "--to", folder / backup_to, "--config", config],
            "backup: database",
            "pages",
        ),
    }


def test_register_verify_counts_the_entries_up_to_the_total(gw: Path) -> None:
    run = in_terminal("register", "verify", "--config", gw)
    drawn = assert_progress(run, "register verify", "entries")
    assert drawn[0] == (500, ENTRIES) and drawn[-1] == (ENTRIES, ENTRIES)
    assert re.search(
        r"\rregister verify: 500/520 entries \(96%\), \d+ entries/s, about ", run.terminal
    )
    assert run.stdout.startswith(f"Register verified: {ENTRIES} entries, chain intact")


def test_register_purge_counts_the_entries_it_reads(gw: Path) -> None:
    run = in_terminal("register", "purge", "--by", "Kim", "--config", gw)
    drawn = assert_progress(run, "register purge: reading", "entries")
    assert drawn[-1] == (ENTRIES, ENTRIES)
    assert run.stdout.startswith(f"Purged {ENTRIES} record(s) ({ENTRIES} entries) older than")


def test_contacts_import_counts_rows_added_and_unchanged(gw: Path) -> None:
    csv = gw.parent / "contacts.csv"
    first = in_terminal("contacts", "import", csv, "--by", "Kim", "--config", gw)
    assert assert_progress(first, "contacts import", "rows")[-1] == (3, 3)
    assert "imported 3 new, 0 updated, 0 unchanged contact(s)" in first.stdout
    again = in_terminal("contacts", "import", csv, "--by", "Kim", "--config", gw)
    assert assert_progress(again, "contacts import", "rows")[-1] == (3, 3)
    assert "imported 0 new, 0 updated, 3 unchanged contact(s)" in again.stdout


def test_backup_counts_the_database_pages_it_copies(gw: Path) -> None:
    run = in_terminal("backup", "--to", gw.parent / "copy", "--config", gw)
    done, _ = assert_progress(run, "backup: database", "pages")[-1]
    copy = gw.parent / "copy" / "gateway.db"
    with contextlib.closing(sqlite3.connect(copy)) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    assert done * page_size == copy.stat().st_size  # every page of the copy, counted
    assert run.stdout.startswith("Backed up ")


def test_contacts_review_counts_the_domains_it_looks_up(gw: Path) -> None:
    # Its own resolver ([dns] nameservers): a DNS server on this machine, never the
    # machine's DNS. council.example's mail goes to a fax service.
    zones = {"cafcass.example": ["10 mx.cafcass.example."], "council.example": ["10 in.efax.com."]}
    with dns_server(zones) as server:
        with gw.open("a", encoding="utf-8") as config:
            config.write(f'[dns]\nnameservers = ["{server.nameserver}"]\ntimeout = 5.0\n')
        _review_with_progress(gw)
    assert ("cafcass.example", "MX") in server.asked
    assert ("council.example", "MX") in server.asked
    assert ("efax.com", "MX") in server.asked  # the fax services' own domains first


def _review_with_progress(gw: Path) -> None:
    csv = gw.parent / "contacts.csv"
    assert (
        in_terminal("contacts", "import", csv, "--by", "Kim", "--config", gw, "--quiet").code == 0
    )
    run = in_terminal("contacts", "review", "--config", gw)
    done, total = assert_progress(run, "contacts review: MX lookups", "domains")[-1]
    assert done == total >= 3  # the fax services' domains, then cafcass.example, council.example
    assert "MX check: 1 flag(s)" in run.stdout
    assert "C-003 council.example: fax_mx: MX in.efax.com belongs to fax service efax.com" in (
        run.stdout
    )
    quiet = in_terminal("contacts", "review", "--quiet", "--config", gw)
    assert quiet.code == 0 and "MX lookups" not in quiet.terminal
    piped = run_cli("contacts", "review", "--config", gw)
    assert piped.returncode == 0 and "MX lookups" not in piped.stderr + piped.stdout


@pytest.mark.parametrize("name", ["verify", "purge", "import", "backup"])
def test_quiet_or_not_a_terminal_writes_nothing_of_it(gw: Path, name: str) -> None:
    args, what, _ = _commands(gw, "quiet-backup")[name]
    quiet = in_terminal(*args, "--quiet")
    assert quiet.code == 0, quiet.terminal
    assert quiet.terminal == ""  # not a byte on stderr
    args, what, _ = _commands(gw, "piped-backup")[name]
    piped = run_cli(*args)
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == "" and what not in piped.stdout and "\r" not in piped.stdout
    # The answer itself is on stdout either way.
    assert quiet.stdout.splitlines()[0].split()[0] == piped.stdout.splitlines()[0].split()[0]


def test_the_line_says_count_rate_and_time_left() -> None:
    assert line("backup: database", "pages", 0, 800, 0.0) == (
        "backup: database: 0/800 pages (0%), time left not yet known"
    )
    assert line("register verify", "entries", 250, 1000, 2.0) == (
        "register verify: 250/1000 entries (25%), 125 entries/s, about 6.0 s left"
    )
    assert line("register verify", "entries", 1000, 1000, 8.0) == (
        "register verify: 1000/1000 entries (100%), 125 entries/s, done in 8.0 s"
    )
    assert [duration(s) for s in (0.4, 42, 185, 7620)] == [
        "0.4 s",
        "42 s",
        "3 min 05 s",
        "2 h 07 min",
    ]


def test_a_stream_that_is_no_terminal_gets_nothing() -> None:
    out = io.StringIO()
    with Progress("register verify", "entries", stream=out) as progress:
        progress(1, 2)
        progress(2, 2)
    assert out.getvalue() == ""
