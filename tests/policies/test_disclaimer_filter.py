"""The disclaimer as a pipeline filter: its options, its phase hook and the preview command."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from filters.disclaimer import DEFAULT_FILE, DisclaimerFilter, Notice, create
from gateway.cli import main
from gateway.envelope import Session, Transaction
from gateway.errors import ConfigError, Refused
from gateway.pipeline import FilterContext, Pipeline, load_filters
from gateway.settings import Settings, load

MESSAGE = (
    b"From: alice@c4f.example\r\nTo: bob@council.example\r\nSubject: Visit\r\n\r\n"
    b"See you on Saturday.\r\n"
)


def write_config(folder: Path, extra: str = "", filters: str = '"sender", "disclaimer"') -> Path:
    path = folder / "gateway.toml"
    path.write_text(
        f'[delivery]\ntransport = "maildir"\n\n[pipeline]\nfilters = [{filters}]\n{extra}',
        encoding="utf-8",
    )
    return path


def tx() -> Transaction:
    return Transaction(Session("192.0.2.1", "client.example", "alice@c4f.example", True), "Q1")


def test_defaults_use_the_packaged_notice() -> None:
    f = create({}, FilterContext(settings=Settings(), store=None))
    assert f.name == "disclaimer"
    assert f.signed == "wrap"
    assert f.notice == Notice.load(DEFAULT_FILE)
    assert DEFAULT_FILE.is_file()


def test_relative_notice_file_is_found_next_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "notice.txt").write_text("Local notice,\nwrapped in the file.\n\nSecond.\n")
    settings = load(
        write_config(tmp_path, '\n[filter.disclaimer]\nfile = "notice.txt"\nsigned = "refuse"\n')
    )
    [f] = load_filters(["disclaimer"], settings.filter, FilterContext(settings, None))
    assert isinstance(f, DisclaimerFilter)
    assert f.notice.paragraphs == ("Local notice, wrapped in the file.", "Second.")
    assert f.signed == "refuse"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"colour": "red"}, "filter.disclaimer.colour: unknown option"),
        ({"enabled": False}, "filter.disclaimer.enabled: unknown option"),
        ({"signed": "strip"}, "filter.disclaimer.signed: must be 'wrap' or 'refuse'"),
        ({"file": ""}, "filter.disclaimer.file: expected a path"),
        ({"file": "missing.txt"}, "cannot read"),
    ],
)
def test_bad_options_stop_start_up(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create(options, FilterContext(settings=Settings(), store=None))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the notice is empty"),
        (b"  \n\n \n", "the notice is empty"),
        (b"caf\xe9\n", "is not UTF-8 text"),
        (b"bell \x07 here\n", "control characters"),
        (b"x" * 201 + b"\n", "a word over 200 characters"),
    ],
)
def test_bad_notice_files_stop_start_up(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "notice.txt"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        create({"file": str(path)}, FilterContext(settings=Settings(), store=None))


async def test_on_data_adds_the_notice_and_notes_it() -> None:
    f = create({}, FilterContext(settings=Settings(), store=None))
    t = tx()
    out = await Pipeline([f]).on_data(t, MESSAGE)
    assert out.startswith(MESSAGE + b"\r\nThis document is strictly confidential")
    assert t.annotations["disclaimer"] == "inserted"
    again = tx()
    assert await Pipeline([f]).on_data(again, out) == out
    assert again.annotations["disclaimer"] == "present"


async def test_large_messages_give_the_same_result_off_the_event_loop() -> None:
    f = create({}, FilterContext(settings=Settings(), store=None))
    big = MESSAGE + b"".join(b"line %07d of a long report\r\n" % i for i in range(60_000))
    assert len(big) > 1 << 20
    t = tx()
    out = await Pipeline([f]).on_data(t, big)
    assert out == f.apply(big).content
    assert out.startswith(big) and t.annotations["disclaimer"] == "inserted"


async def test_unreadable_mail_is_refused_through_the_pipeline() -> None:
    f = create({}, FilterContext(settings=Settings(), store=None))
    bad = b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n\r\nx\r\n'
    t = tx()
    with pytest.raises(Refused) as caught:
        await Pipeline([f]).on_data(t, bad)
    assert caught.value.reply().startswith("554 5.6.0 Cannot add the required confidentiality")
    assert "disclaimer" not in t.annotations


def run_cli(
    monkeypatch: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
    argv: list[str],
    stdin: bytes,
) -> tuple[int, bytes, bytes]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    code = main(argv)
    out, err = capsysbinary.readouterr()
    return code, out, err


def test_preview_prints_the_relayed_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    config = write_config(tmp_path)
    code, out, err = run_cli(
        monkeypatch, capsysbinary, ["disclaimer", "preview", "--config", str(config)], MESSAGE
    )
    assert code == 0
    assert out == create({}, FilterContext(Settings(), None)).apply(MESSAGE).content
    assert b"notice: inserted" in err


def test_preview_reads_lf_files_as_crlf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    config = write_config(tmp_path)
    lf = MESSAGE.replace(b"\r\n", b"\n").rstrip(b"\n")
    code, out, _ = run_cli(
        monkeypatch, capsysbinary, ["disclaimer", "preview", "--config", str(config)], lf
    )
    assert code == 0
    assert out.startswith(MESSAGE) and b"\n" not in out.replace(b"\r\n", b"")


def test_preview_uses_the_configured_notice_and_warns_when_disabled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    (tmp_path / "n.txt").write_text("Our own notice.\n")
    config = write_config(tmp_path, '\n[filter.disclaimer]\nfile = "n.txt"\n')
    code, out, _ = run_cli(
        monkeypatch, capsysbinary, ["disclaimer", "preview", "--config", str(config)], MESSAGE
    )
    assert code == 0 and out.endswith(b"\r\n\r\nOur own notice.\r\n")
    config = write_config(tmp_path, filters='"sender"')
    code, out, err = run_cli(
        monkeypatch, capsysbinary, ["disclaimer", "preview", "--config", str(config)], MESSAGE
    )
    assert code == 0 and b"WITHOUT the notice" in err


def test_preview_of_a_refused_message_prints_the_reply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    config = write_config(tmp_path)
    bad = b"Content-Type: text/plain\r\nContent-Type: text/html\r\n\r\nx\r\n"
    code, out, err = run_cli(
        monkeypatch, capsysbinary, ["disclaimer", "preview", "--config", str(config)], bad
    )
    assert code == 1 and out == b""
    assert err.startswith(b"554 5.6.0 Cannot add the required confidentiality notice safely")


@pytest.mark.parametrize(
    ("stdin", "message"),
    [(b"", b"no message on stdin"), (b"A: b\r\n\rC: d\r\n\r\nx\r\n", b"bare CR")],
)
def test_preview_user_mistakes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
    stdin: bytes,
    message: bytes,
) -> None:
    config = write_config(tmp_path)
    code, _, err = run_cli(
        monkeypatch, capsysbinary, ["disclaimer", "preview", "--config", str(config)], stdin
    )
    assert code == 2 and message in err
    code, _, err = run_cli(
        monkeypatch,
        capsysbinary,
        ["disclaimer", "preview", "--config", str(tmp_path / "no.toml")],
        MESSAGE,
    )
    assert code == 2 and b"no such config file" in err
