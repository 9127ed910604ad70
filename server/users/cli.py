"""``hallwatch user add|passwd|list|disable``, and the demo's accounts.

A password is read from a file (``--password-file``, first line) or typed at
a hidden prompt, never given on the command line where ``ps`` and the shell
history would keep it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from server.cli_common import DEFAULT_DB, Db
from server.users.accounts import ROLE_ZH, ROLES, UserError, UserStore

user_app = typer.Typer(help="用户 Users: accounts, roles and passwords (docs/users.md).", no_args_is_help=True)
console = Console(stderr=True)
Department = Annotated[Optional[str], typer.Option(help="A window lead's department (进驻部门), as spelled in the hall file: the only windows they may change records of.")]
HallCheck = Annotated[Optional[Path], typer.Option("--hall", help="Hall file: the department is checked against its windows.")]
PasswordFile = Annotated[Optional[Path], typer.Option(help="File whose first line is the password (instead of the prompt).")]
DEMO_USERS_FILE = "users.txt"


def _store(db: str) -> UserStore:
    from server.cli_common import open_database

    return UserStore(open_database(db))


def _password(password_file: Path | None) -> str:
    if password_file is None:
        return typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        lines = password_file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UserError(f"{password_file}: {exc.strerror}") from None
    return lines[0] if lines else ""


def _known(department: str | None, hall_file: Path | None) -> str | None:
    """``department`` when the hall file (if given) has a window of it; a misspelt one would lock the lead out."""
    if department is None or hall_file is None:
        return department
    from broker.config_file import ConfigError
    from server.config.hall import load_hall

    try:
        names = sorted({w.department for w in load_hall(hall_file).windows})
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    if department.strip() not in names:
        raise UserError(f"department {department!r} is not in {hall_file}; its departments are {', '.join(names)}")
    return department.strip()


def _run(action: str, call: object) -> None:
    try:
        call()  # type: ignore[operator]
    except UserError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    console.print(escape(action))  # names and departments are text, never markup


@user_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")],
    department: Department = None,
    hall: HallCheck = None,
    scope: Annotated[Optional[str], typer.Option(help="The id of the one hall the user belongs to (that hall's office, its window leads); omit for the whole district (督查科, leadership).")] = None,
    password_file: PasswordFile = None,
    db: Db = DEFAULT_DB,
) -> None:
    """Create a user with a role (a window lead also with their department), of one hall or the whole district."""
    done = f"user {name} added ({role}{' · ' + department if department else ''} · {scope or 'whole district'})"
    _run(done, lambda: _store(db).add(name, role, _password(password_file), _known(department, hall), scope))


@user_app.command("department")
def set_department(name: str, department: Annotated[str, typer.Argument(help="The 进驻部门, as spelled in the hall file.")], hall: HallCheck = None, db: Db = DEFAULT_DB) -> None:
    """Move a window lead to another department; their open sessions end."""
    _run(f"{name} now answers for {department}; their sessions ended", lambda: _store(db).set_department(name, _known(department, hall)))


@user_app.command("passwd")
def passwd(name: str, password_file: PasswordFile = None, db: Db = DEFAULT_DB) -> None:
    """Set a user's password; their open sessions end."""
    _run(f"password of {name} changed; their sessions ended", lambda: _store(db).set_password(name, _password(password_file)))


@user_app.command("disable")
def disable(name: str, db: Db = DEFAULT_DB) -> None:
    """Stop a user logging in and end their sessions (the audit log keeps their name)."""
    _run(f"user {name} disabled", lambda: _store(db).disable(name))


@user_app.command("list")
def list_users(db: Db = DEFAULT_DB) -> None:
    """The users, their roles and whether they may log in."""
    table = Table("user", "role", "department", "", "created (UTC)")
    for user in _store(db).users():
        role = str(user["role"])
        table.add_row(
            str(user["username"]), f"{role} {ROLE_ZH[role]}", escape(str(user["department"] or "")), "disabled" if user["disabled"] else "", str(user["created_at"])[:19]  # type: ignore[index]
        )
    Console().print(table)


def demo_users(store: UserStore, data_dir: Path, lead_department: str) -> None:
    """At the demo's first start, one user per role with a random password, printed once and kept
    in ``data_dir/users.txt`` (0600); later starts only say where the file is.  The window lead
    answers for ``lead_department``."""
    listing = data_dir / DEMO_USERS_FILE
    if store.exists():
        console.print(f"demo users: see {listing}" if listing.exists() else "demo users exist (hallwatch user list)")
        return
    lines = []
    for role in ROLES:
        password = secrets.token_urlsafe(12)
        store.add(role, role, password, lead_department if role == "lead" else None)
        lines.append(f"{role}\t{password}\t{ROLE_ZH[role]}" + (f"（{lead_department}）" if role == "lead" else ""))
    fd = os.open(listing, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("# HallWatch demo users: name, password, role (created at the first start; delete this file once noted)\n")
        handle.write("\n".join(lines) + "\n")
    console.print(f"[bold]示范账号 demo users[/] (also in {listing}, mode 0600):")
    for line in lines:
        console.print("  " + line.replace("\t", "  "))
