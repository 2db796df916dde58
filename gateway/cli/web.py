"""``c4f-gateway web``: serve the review console; manage a console account's TOTP second factor.

    c4f-gateway web [serve] --config PATH [--listen HOST:PORT]  serve until SIGTERM / Ctrl-C
    c4f-gateway web enrol-link LOGIN --config PATH   a one-time link (24 hours) to enrol
    c4f-gateway web totp-enrol LOGIN --config PATH   print a new otpauth:// URI for LOGIN
    c4f-gateway web totp-reset LOGIN --config PATH   remove it (lost device); also totp-remove

Options go before or after the login. The console reads and writes the same database
and keys as the other commands; every change here is in the register's admin trail.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from typing import TYPE_CHECKING

from gateway.cli import CLIError
from gateway.cli.common import add_config_arg, load_settings, whoami
from gateway.logging import configure
from gateway.settings import Settings
from gateway.settings.web import WebSettings, web_settings

if TYPE_CHECKING:
    from gateway.web.console import Console

LOGIN_ACTIONS = {
    "enrol-link": "issue a one-time link (valid 24 hours) with which LOGIN sets up their "
    "own second factor: they give their password, scan the QR code and confirm a code",
    "totp-enrol": "print a new second-factor key for LOGIN as an otpauth:// URI (active at "
    "once; hand it over in person)",
    "totp-reset": "remove LOGIN's second factor (a lost device) and sign them out; issue a "
    "new enrol-link afterwards",
    "totp-remove": "the same as totp-reset",
}
ACTIONS = ("serve", *LOGIN_ACTIONS)


def _listen_arg(p: argparse.ArgumentParser, default: object) -> None:
    p.add_argument(
        "--listen",
        metavar="HOST:PORT",
        default=default,
        help="serve on this address instead of [web] listen (port 0: any free port)",
    )


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "web",
        help="serve the review console (register review, contacts, queue)",
        description="Serve the review console for line managers and admins (the default), "
        "or manage the TOTP second factor of a console account.",
    )
    p.add_argument("--by", help="who makes the change (default: you)")
    _listen_arg(p, None)
    add_config_arg(p)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    # Options given after ACTION land here; SUPPRESS keeps those given before it.
    serve_p = actions.add_parser("serve", help="serve the console (the default)")
    _listen_arg(serve_p, argparse.SUPPRESS)
    add_config_arg(serve_p, argparse.SUPPRESS)
    for name, words in LOGIN_ACTIONS.items():
        a = actions.add_parser(name, help=words, description=words[0].upper() + words[1:] + ".")
        a.add_argument("login", help="the account's login (its mail address)")
        a.add_argument("--by", default=argparse.SUPPRESS, help="who makes the change")
        add_config_arg(a, argparse.SUPPRESS)
    p.set_defaults(func=run, action="serve", login=None)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    if args.action == "serve":
        web = web_settings(settings)
        if args.listen:
            web = dataclasses.replace(web, listen=args.listen)  # checked as [web] listen is
        configure(settings.log.format, settings.log.level)
        asyncio.run(serve(settings, web))
        return 0
    return totp(settings, args.action, args.login.lower(), args.by or whoami())


def totp(settings: Settings, action: str, login: str, actor: str) -> int:
    from gateway.web.console import Console  # the console's modules load only when used

    console = Console.open(settings)
    try:
        member = console.staff.get(login)
        if member is None:
            raise CLIError(f"no account {login}")
        if action == "enrol-link":
            return enrol_link(console, login, actor)
        if action in ("totp-remove", "totp-reset"):
            if not console.totp.remove(login):
                raise CLIError(f"{login} has no second factor")
            console.sessions.end_all(login)
            console.audit(actor, "totp removed", {"login": login, "how": action})
            print(f"second factor removed for {login}; signed out everywhere")
            return 0
        secret = console.totp.enrol(login)
        console.sessions.end_all(login)
        console.audit(actor, "totp enrolled", {"login": login})
        print(f"New second factor for {login}. Add it to an authenticator app, then keep no copy:")
        print(f"  {console.totp.uri(secret, login, settings.organisation.name)}")
        print(f"  (or type the key by hand: {secret})")
        return 0
    finally:
        console.close()


def enrol_link(console: Console, login: str, actor: str) -> int:
    from gateway.web.enrol_links import issue  # as the staff page's button issues it

    link = issue(console, login, actor)
    print(f"One-time link for {login} to set up their second factor (valid {link.hours} hours):")
    print(f"  {link.url}")
    print("Give it to them only (it works once; a new link replaces this one).")
    if link.replaces_factor:
        print("Their current second factor keeps working until they confirm a new one.")
    return 0


async def serve(settings: Settings, web: WebSettings) -> None:
    from gateway.web.app import create_app
    from gateway.web.console import Console
    from gateway.web.server import ConsoleServer

    console = Console.open(settings, web=web)
    host, port = web.host_port
    server = ConsoleServer(create_app(console), settings, https=web.tls, host=host, port=port)
    try:
        await server.start()
        print(f"c4f-gateway: review console on {server.url}/", flush=True)
        await server.wait()
    finally:
        await server.stop()
        console.close()
