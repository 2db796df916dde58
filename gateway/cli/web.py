"""``c4f-gateway web``: serve the review console; enrol or remove a TOTP second factor.

    c4f-gateway web --config PATH [--listen HOST:PORT]  serve until SIGTERM / Ctrl-C
    c4f-gateway web totp-enrol LOGIN --config PATH   print a new otpauth:// URI for LOGIN
    c4f-gateway web totp-remove LOGIN --config PATH

The console reads and writes the same database and keys as the other commands.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass

from gateway.cli import CLIError
from gateway.cli.common import add_config_arg, load_settings
from gateway.logging import configure
from gateway.settings import Settings
from gateway.settings.web import WebSettings, web_settings

ACTIONS = ("serve", "totp-enrol", "totp-remove")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "web",
        help="serve the review console (register review, contacts, queue)",
        description="Serve the review console for line managers and admins, or manage "
        "the TOTP second factor of a console account.",
    )
    p.add_argument("action", nargs="?", choices=ACTIONS, default="serve")
    p.add_argument("login", nargs="?", help="the account (totp-enrol, totp-remove)")
    p.add_argument("--by", help="who makes the change (default: you)")
    p.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="serve on this address instead of [web] listen (port 0: any free port)",
    )
    add_config_arg(p)
    p.set_defaults(func=run)


def _whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    if args.action == "serve":
        if args.login:
            raise CLIError("serve takes no login")
        web = web_settings(settings)
        if args.listen:
            web = dataclasses.replace(web, listen=args.listen)  # checked as [web] listen is
        configure(settings.log.format, settings.log.level)
        asyncio.run(serve(settings, web))
        return 0
    if not args.login:
        raise CLIError(f"{args.action} needs the account's login")
    return totp(settings, args.action, args.login.lower(), args.by or _whoami())


def totp(settings: Settings, action: str, login: str, actor: str) -> int:
    from gateway.web.console import Console  # the console's modules load only when used

    console = Console.open(settings)
    try:
        member = console.staff.get(login)
        if member is None:
            raise CLIError(f"no account {login}")
        if action == "totp-remove":
            if not console.totp.remove(login):
                raise CLIError(f"{login} has no second factor")
            console.sessions.end_all(login)
            console.audit(actor, "totp removed", {"login": login})
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
