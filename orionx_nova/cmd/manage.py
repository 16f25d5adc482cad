"""``orionx-manage``: administrative commands run on a controller host.

    orionx-manage --config-file /etc/orionx/orionx.conf db sync
    orionx-manage --config-file /etc/orionx/orionx.conf db version
"""

import sys

import sqlalchemy as sa
from oslo_config import cfg

from orionx_nova import config
from orionx_nova.conf import CONF
from orionx_nova.db import api as db_api
from orionx_nova.db import migration


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


_command_opt = cfg.SubCommandOpt(
    "command",
    title="Commands",
    help="Available categories",
    handler=_add_db_parsers,
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
    finally:
        db_api.dispose()


if __name__ == "__main__":
    sys.exit(main())
