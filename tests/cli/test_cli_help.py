"""Every option of every `c4f-gateway` command says what it is for.

`--help` is how an administrator learns a command at the server; an option listed there
without a word (`--staff LOGIN`, `--approved-by NAME`) leaves them guessing. The first test
walks the whole argparse tree `c4f-gateway` builds, every sub-command and action down to
the leaves, so an option added later without help fails here; the second reads `--help`
as a person does, from the installed command.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator

from support.subprocess_gateway import run_cli

from gateway.cli import build_parser


def _walk(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, str, str | None]]:
    """``(command path, argument, its help)`` for every argument and sub-command under
    ``parser``, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, child in action.choices.items():
                yield path, name, helps.get(name)
                yield from _walk(child, f"{path} {name}")
        else:
            yield path, "/".join(action.option_strings) or action.dest, action.help


def test_every_option_of_every_command_has_help() -> None:
    walked = list(_walk(build_parser(), "c4f-gateway"))
    missing = [
        f"{path} {argument}"
        for path, argument, words in walked
        if words == argparse.SUPPRESS or not (words or "").strip()
    ]
    assert missing == []
    # The walk reaches the leaves: options known to be there, deep down.
    arguments = {(path, argument) for path, argument, _ in walked}
    assert ("c4f-gateway register request add", "--nature") in arguments
    assert ("c4f-gateway web serve", "--config") in arguments
    assert ("c4f-gateway contacts add", "--approved-by") in arguments
    assert len(arguments) > 200


def test_help_explains_the_options_that_had_no_words() -> None:
    expected = {
        ("register", "list"): {
            "--staff LOGIN": "sent (a request: taken) by this staff login",
            "--family REF": "about this family (its reference)",
        },
        ("contacts", "add"): {
            "--role TEXT": 'their job title, e.g. "Family court adviser"',
            "--approved-by NAME": "who approved the contact",
        },
    }
    for argv, options in expected.items():
        shown = run_cli(*argv, "--help")
        assert shown.returncode == 0, shown.stderr
        text = " ".join(shown.stdout.split())  # argparse wraps to the terminal's width
        for option, words in options.items():
            assert re.search(rf"{re.escape(option)} {re.escape(words)}", text), (argv, option)
