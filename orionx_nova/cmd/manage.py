"""``orionx-manage``: administrative commands run on a controller host.

    orionx-manage --config-file /etc/orionx/orionx.conf db sync
    orionx-manage --config-file /etc/orionx/orionx.conf db version
    orionx-manage user create alice --role operator --project demo
    orionx-manage user list
    orionx-manage user unlock alice
"""

import getpass
import os
import sys

import sqlalchemy as sa
from oslo_config import cfg

from orionx_common import config
from orionx_nova import exception
from orionx_nova.conf import CONF
from orionx_nova.db import api as db_api
from orionx_nova.db import migration
from orionx_nova.objects import users


def _db_sync():
    revision = CONF.command.revision
    before = migration.current_version()
    migration.upgrade(revision)
    after = migration.current_version()
    print(
        "Database %s is at revision %s (was %s)."
        % (_safe_url(), after, before or "empty")
    )
    return 0


def _db_version():
    current = migration.current_version()
    head = migration.head_version()
    print(current or "None")
    if current != head:
        print(
            "The newest revision is %s; run 'orionx-manage db sync' to upgrade." % head,
            file=sys.stderr,
        )
    return 0


def _safe_url():
    return db_api.get_engine().url.render_as_string(hide_password=True)


def _add_db_parsers(subparsers):
    db = subparsers.add_parser("db", help="Controller database schema.")
    db_actions = db.add_subparsers(dest="action", metavar="ACTION")
    db_actions.required = True
    sync = db_actions.add_parser("sync", help="Create or upgrade the schema.")
    sync.add_argument(
        "revision", nargs="?", default="head",
        help="Alembic revision to upgrade to (default: the newest).",
    )
    sync.set_defaults(func=_db_sync)
    version = db_actions.add_parser("version", help="Print the schema revision.")
    version.set_defaults(func=_db_version)


def _read_password():
    """The new user's password: from --password-file, ORIONX_PASSWORD or a
    prompt, in that order; never from the command line, where other users
    of the host could read it in the process list."""
    if CONF.command.password_file:
        with open(CONF.command.password_file, encoding="utf-8") as f:
            return f.readline().rstrip("\r\n")
    if os.environ.get("ORIONX_PASSWORD"):
        return os.environ["ORIONX_PASSWORD"]
    if not sys.stdin.isatty():
        raise exception.InvalidRequest(
            "No password: give --password-file, set ORIONX_PASSWORD or run in a terminal")
    password = getpass.getpass("Password for %s: " % CONF.command.user_name)
    if getpass.getpass("Repeat the password: ") != password:
        raise exception.InvalidRequest("The two passwords differ; nothing was created")
    return password


def _user_create():
    user = users.create(CONF.command.user_name, _read_password(), CONF.command.role,
                        project_id=CONF.command.project)
    print("Created user %s with role %s in project %s."
          % (user["name"], user["role"], user["project_id"] or "(none)"))
    if user["role"] != "admin" and not user["project_id"]:
        print("Without --project this user sees no allocations; only admins work "
              "across projects.", file=sys.stderr)
    return 0


def _user_list():
    rows = users.list()
    print("%-24s %-9s %-24s %-20s %s" % ("NAME", "ROLE", "PROJECT", "CREATED", "LOCKED UNTIL"))
    for user in rows:
        print("%-24s %-9s %-24s %-20s %s" % (user["name"], user["role"],
                                             user["project_id"] or "-", user["created_at"],
                                             user["locked_until"] or "-"))
    return 0


def _user_unlock():
    users.unlock(CONF.command.user_name)
    print("User %s unlocked: its next login is checked as usual." % CONF.command.user_name)
    return 0


def _add_user_parsers(subparsers):
    user = subparsers.add_parser("user", help="API users for [api] auth_strategy = local.")
    user_actions = user.add_subparsers(dest="action", metavar="ACTION")
    user_actions.required = True
    create = user_actions.add_parser("create", help="Create a user.")
    # dest is not "name": oslo.config keeps the chosen category in
    # CONF.command.name.
    create.add_argument("user_name", metavar="NAME")
    create.add_argument("--role", required=True, choices=users.ROLES)
    create.add_argument("--project", help="Project whose allocations the user works on.")
    create.add_argument("--password-file",
                        help="File whose first line is the password (else ORIONX_PASSWORD "
                        "or a prompt).")
    create.set_defaults(func=_user_create)
    listing = user_actions.add_parser("list", help="List users.")
    listing.set_defaults(func=_user_list)
    unlock = user_actions.add_parser(
        "unlock", help="End the lockout of a user locked after too many wrong passwords.")
    unlock.add_argument("user_name", metavar="NAME")
    unlock.set_defaults(func=_user_unlock)


def _add_parsers(subparsers):
    _add_db_parsers(subparsers)
    _add_user_parsers(subparsers)


_command_opt = cfg.SubCommandOpt(
    "command",
    title="Commands",
    help="Available categories",
    handler=_add_parsers,
)


def main(argv=None):
    CONF.register_cli_opt(_command_opt)
    config.parse_args(
        sys.argv[1:] if argv is None else argv,
        # Our own line says where the schema ended up; Alembic's per-step
        # INFO lines are noise for operators.
        default_log_levels=["alembic.runtime.migration=WARN"],
    )
    try:
        return CONF.command.func()
    except sa.exc.OperationalError as exc:
        print(
            "orionx-manage: cannot use the database %s: %s\n"
            "Check [database] connection and that the server is running."
            % (_safe_url(), exc.orig),
            file=sys.stderr,
        )
        return 1
    except (exception.OrionXError, OSError) as exc:
        print("orionx-manage: %s" % exc, file=sys.stderr)
        return 1
    finally:
        db_api.dispose()


if __name__ == "__main__":
    sys.exit(main())
