"""The DB API: one engine per process and one way to run a transaction.

Everything that touches the controller database goes through
:func:`transaction`, which commits on success and rolls back on any error, so
no caller can leave a half-written allocation behind.

On SQLite a transaction that may write begins with ``BEGIN IMMEDIATE``: it
takes the database's one write lock before its first read, so the rows a
change reads (an allocation it is about to delete, a user's failed-login
count) cannot change under it, which is what ``SELECT ... FOR UPDATE``
gives on PostgreSQL and MySQL and what SQLite ignores. The Python driver's
own transaction handling is switched off: it would begin a transaction
only at the first INSERT, UPDATE or DELETE, so a read before it saw rows
another writer was changing (four concurrent deletes of one allocation
all released its capacity). Read-only transactions begin deferred and read
one snapshot while a writer works (WAL).
"""

import contextlib
import threading

import sqlalchemy as sa
from oslo_log import log as logging
from sqlalchemy import event, orm

from orionx_common import config
from orionx_nova.conf import CONF

LOG = logging.getLogger(__name__)

_lock = threading.Lock()
_engine = None
_sessionmaker = None


def connection_url():
    """``[database] connection``, or the SQLite file in the state directory."""
    if CONF.database.connection:
        return CONF.database.connection
    return "sqlite:///" + config.state_path("orionx.sqlite")


def create_engine(url=None):
    """A new engine for ``url`` (default: :func:`connection_url`), with the
    per-backend settings the pool needs."""
    url = sa.engine.make_url(url or connection_url())
    kwargs = {"echo": CONF.database.connection_debug, "future": True}
    if url.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {
            "timeout": CONF.database.sqlite_busy_timeout_ms / 1000.0,
            # The API serves requests from several threads; every transaction
            # still uses one connection at a time.
            "check_same_thread": False,
        }
    else:
        kwargs.update(
            pool_size=CONF.database.max_pool_size,
            pool_timeout=CONF.database.pool_timeout_s,
            pool_pre_ping=True,
        )
    engine = sa.create_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


# Execution option of a connection whose transaction only reads.
_READ_ONLY = "orionx_read_only"


def _sqlite_on_connect(dbapi_connection, _record):
    # Transactions are begun by _sqlite_begin, not by the driver.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # WAL lets readers proceed while one writer commits; SQLite leaves
        # foreign keys off unless asked on every connection.
        if not _is_memory_database(dbapi_connection):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _sqlite_begin(connection):
    if connection.get_execution_options().get(_READ_ONLY):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _is_memory_database(dbapi_connection):
    row = dbapi_connection.execute("PRAGMA database_list").fetchone()
    return not row or not row[2]


def get_engine():
    """The process's engine, created on first use from the configuration."""
    global _engine, _sessionmaker
    with _lock:
        if _engine is None:
            _engine = create_engine()
            _sessionmaker = orm.sessionmaker(bind=_engine, expire_on_commit=False)
        return _engine


def configure(engine):
    """Use ``engine`` for this process (tests, and tools that already made one)."""
    global _engine, _sessionmaker
    with _lock:
        _engine = engine
        _sessionmaker = orm.sessionmaker(bind=engine, expire_on_commit=False)


def dispose():
    """Close every pooled connection and forget the engine."""
    global _engine, _sessionmaker
    with _lock:
        if _engine is not None:
            _engine.dispose()
        _engine = None
        _sessionmaker = None


@contextlib.contextmanager
def transaction(read_only=False):
    """``with transaction() as session:`` runs the block in one database
    transaction: committed when the block ends, rolled back if it raises.
    ``read_only`` for a block that never writes: on SQLite it does not wait
    for the write lock (see the module's docstring)."""
    get_engine()
    session = _sessionmaker()
    try:
        with session.begin():
            if read_only:
                session.connection(execution_options={_READ_ONLY: True})
            yield session
    finally:
        session.close()
