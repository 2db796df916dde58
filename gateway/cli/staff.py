"""``c4f-gateway staff``: the accounts staff mail clients log in with."""

from __future__ import annotations

import argparse
import sqlite3

from gateway.cli import CLIError
from gateway.cli.common import add_config_arg, load_settings, local_time, read_password, table
from gateway.directory.contacts import os_user
from gateway.directory.staff import ROLES, StaffDirectory
from gateway.register.ledger import Register
from gateway.store import Store
from gateway.web.sessions import end_sessions


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "staff",
        help="add, edit, remove, list staff accounts; change passwords",
        description="Staff log in with their own mail address and may send only "
        "as that address or its aliases.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="create an account")
    add.add_argument("login", help="the staff member's own mail address")
    add.add_argument(
        "--alias",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="another address this person may send as (repeatable)",
    )
    add.add_argument("--role", choices=ROLES, default="staff", help="what else they may do")
    add.add_argument(
        "--manager",
        action="append",
        default=[],
        metavar="LOGIN",
        help="their line manager's login (repeatable)",
    )
    _password_stdin_arg(add)
    add.add_argument(
        "--external",
        action="store_true",
        help="allow a login outside the centre's [organisation] domains (someone who works "
        "for the centre with an address elsewhere: a contractor or volunteer); without it "
        "such a login is refused, as it is most often a typing mistake",
    )

    ed = actions.add_parser(
        "edit",
        help="change an account's line managers, role or aliases",
        description="Changes only what is given; each option replaces that setting whole.",
    )
    _login_arg(ed)
    mgrs = ed.add_mutually_exclusive_group()
    mgrs.add_argument(
        "--manager",
        action="append",
        metavar="LOGIN",
        help="their line manager's login (repeatable; replaces the current ones)",
    )
    mgrs.add_argument("--no-managers", action="store_true", help="remove every line manager")
    ed.add_argument("--role", choices=ROLES, help="what else they may do")
    ed.add_argument(
        "--alias",
        action="append",
        metavar="ADDRESS",
        help="another address they may send as (repeatable; replaces the current ones)",
    )

    rm = actions.add_parser("remove", help="delete an account")
    _login_arg(rm)

    actions.add_parser("list", help="list accounts")

    pw = actions.add_parser("passwd", help="set a new password")
    _login_arg(pw)
    _password_stdin_arg(pw)

    al = actions.add_parser("aliases", help="replace the addresses an account may send as")
    _login_arg(al)
    al.add_argument(
        "aliases",
        nargs="*",
        metavar="ADDRESS",
        help="every address they may send as besides the login (none: no aliases)",
    )

    role = actions.add_parser("role", help="set an account's role (staff, manager, admin)")
    _login_arg(role)
    role.add_argument("role", choices=ROLES, help="the new role: what else they may do")

    mg = actions.add_parser("managers", help="replace an account's line managers")
    _login_arg(mg)
    mg.add_argument(
        "managers",
        nargs="*",
        metavar="LOGIN",
        help="every line manager's login (none: no line manager)",
    )

    for a in actions.choices.values():
        add_config_arg(a)
    p.set_defaults(func=run)


def _login_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("login", help="the account's login (the staff member's own mail address)")


def _password_stdin_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input instead of prompting",
    )


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    store = Store(settings.storage.database)
    try:
        register = Register.from_settings(store, settings.register)
        staff = StaffDirectory(
            store,
            audit=register.record_admin,
            actor=f"cli:{os_user()}",
            sign_out=end_sessions,
            cost=settings.auth.password_hash_cost,
        )
        if args.action == "add":
            _check_domain(args.login, settings.organisation.domains, args.external)
        return _run(args, staff)
    finally:
        store.close()


def _run(args: argparse.Namespace, staff: StaffDirectory) -> int:
    if args.action == "add":
        if "@" not in args.login:
            raise CLIError("the login is the staff member's mail address (name@domain)")
        _check_managers(staff, args.manager, args.login)
        password = read_password(args)
        try:
            staff.add(
                args.login,
                password,
                tuple(a.lower() for a in args.alias),
                role=args.role,
                managers=tuple(args.manager),
            )
        except sqlite3.IntegrityError:
            raise CLIError(f"{args.login} already exists") from None
        print(f"added {args.login.lower()}")
    elif args.action == "edit":
        _edit(args, staff)
    elif args.action == "remove":
        if not staff.remove(args.login):
            raise CLIError(f"no account {args.login}")
        print(f"removed {args.login.lower()}")
    elif args.action == "passwd":
        if staff.get(args.login) is None:
            raise CLIError(f"no account {args.login}")
        staff.set_password(args.login, read_password(args, "New password"))
        print(f"password changed for {args.login.lower()}; signed out of the console everywhere")
    elif args.action == "aliases":
        if not staff.set_aliases(args.login, tuple(args.aliases)):
            raise CLIError(f"no account {args.login}")
        print(f"aliases of {args.login.lower()}: {', '.join(args.aliases) or '(none)'}")
    elif args.action == "role":
        if not staff.set_role(args.login, args.role):
            raise CLIError(f"no account {args.login}")
        print(f"{args.login.lower()} is now {args.role}")
    elif args.action == "managers":
        _check_managers(staff, args.managers, args.login)
        if not staff.set_managers(args.login, tuple(args.managers)):
            raise CLIError(f"no account {args.login}")
        print(f"line managers of {args.login.lower()}: {', '.join(args.managers) or '(none)'}")
    else:
        members = staff.list()
        if not members:
            print("no staff accounts yet: add one with 'c4f-gateway staff add ADDRESS'")
            return 0
        print(
            table(
                ["Login", "Role", "Aliases", "Line managers", "Created"],
                [
                    [
                        m.login,
                        m.role,
                        ", ".join(m.aliases),
                        ", ".join(m.managers),
                        local_time(m.created),
                    ]
                    for m in members
                ],
            )
        )
    return 0


def _check_domain(login: str, domains: tuple[str, ...], external: bool) -> None:
    """A login is the address staff send as: outside the centre's domains it is most often a
    typing mistake (a personal or a partner's address), so it takes ``--external``."""
    if external or "@" not in login:  # no "@": _run says what a login is
        return
    if login.rpartition("@")[2].lower() in (d.lower() for d in domains):
        return
    raise CLIError(
        f"{login.lower()} is outside the centre's domains ({', '.join(domains)}, "
        "[organisation] domains in the config): give --external if this person really "
        "sends from that address"
    )


def _check_managers(staff: StaffDirectory, managers: list[str], login: str) -> None:
    if login.lower() in (m.lower() for m in managers):
        # Held messages wait for someone else: nobody is their own line manager.
        raise CLIError(f"{login.lower()} cannot be their own line manager")
    unknown = [m for m in managers if staff.get(m) is None]
    if unknown:
        raise CLIError(f"no account {', '.join(unknown)} (add line managers first)")


def _edit(args: argparse.Namespace, staff: StaffDirectory) -> None:
    """Only what is given, each through its own setter (and its own register record)."""
    login = args.login.lower()
    if staff.get(login) is None:
        raise CLIError(f"no account {args.login}")
    managers = [] if args.no_managers else args.manager
    if managers is None and args.role is None and args.alias is None:
        raise CLIError("nothing to change: give --manager, --no-managers, --role or --alias")
    if managers:
        _check_managers(staff, managers, login)  # before any change: a refused edit changes nothing
    changes: list[tuple[bool, str]] = []
    if args.role is not None:
        changes.append((staff.set_role(login, args.role), f"{login} is now {args.role}"))
    if managers is not None:
        managers = list(dict.fromkeys(m.lower() for m in managers))
        said = f"line managers of {login}: {', '.join(managers) or '(none)'}"
        changes.append((staff.set_managers(login, tuple(managers)), said))
    if args.alias is not None:
        aliases = list(dict.fromkeys(a.lower() for a in args.alias))
        said = f"aliases of {login}: {', '.join(aliases)}"
        changes.append((staff.set_aliases(login, tuple(aliases)), said))
    for done, said in changes:
        if not done:  # the account was removed meanwhile
            raise CLIError(f"no account {args.login}")
        print(said)
