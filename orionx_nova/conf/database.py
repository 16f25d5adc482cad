"""Options in ``[database]``: where the controller keeps the pool."""

from oslo_config import cfg

database_group = cfg.OptGroup(
    "database",
    title="Controller database",
    help="The controller's database: the pool's source of truth.",
)

database_opts = [
    cfg.StrOpt(
        "connection",
        secret=True,
        help="SQLAlchemy URL of the controller database, for example "
        "postgresql+psycopg2://orionx:PASS@db/orionx or "
        "mysql+pymysql://orionx:PASS@db/orionx. When unset, a SQLite file "
        "orionx.sqlite in [DEFAULT] state_dir is used (one controller only).",
    ),
    cfg.IntOpt(
        "max_pool_size",
        default=10,
        min=1,
        help="Connections kept open per controller process (PostgreSQL and "
        "MySQL only).",
    ),
    cfg.IntOpt(
        "pool_timeout_s",
        default=30,
        min=1,
        help="Seconds to wait for a free pooled connection before failing.",
    ),
    cfg.IntOpt(
        "sqlite_busy_timeout_ms",
        default=10000,
        min=0,
        help="How long a SQLite writer waits for another writer's lock, in "
        "milliseconds, before the transaction fails.",
    ),
    cfg.BoolOpt(
        "connection_debug",
        default=False,
        help="Log every SQL statement (very verbose; for debugging only).",
    ),
]


def register_opts(conf):
    conf.register_group(database_group)
    conf.register_opts(database_opts, group=database_group)


def list_opts():
    return {database_group: database_opts}
