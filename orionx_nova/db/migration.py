"""Schema migrations of the controller database, driven through Alembic."""

import functools
import os
import sys

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from orionx_nova.db import api as db_api


def migrations_dir():
    """The ``migrations/`` directory: beside the package in a source tree,
    or under ``share/orionx`` where pip installed the data files."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [
        os.path.join(here, os.pardir, os.pardir, "migrations"),
        os.path.join(sys.prefix, "share", "orionx", "migrations"),
    ]
    for candidate in candidates:
        if os.path.isfile(os.path.join(candidate, "env.py")):
            return os.path.normpath(candidate)
    raise RuntimeError(
        "Alembic migrations not found in %s; reinstall the orionx-pool package"
        % " or ".join(os.path.normpath(c) for c in candidates)
    )


def alembic_config(connection):
    """An Alembic config that migrates over ``connection``."""
    directory = migrations_dir()
    cfg = Config(os.path.join(directory, "alembic.ini"))
    cfg.set_main_option("script_location", directory)
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(revision="head", engine=None):
    """Bring the schema up to ``revision`` (default: the newest)."""
    engine = engine or db_api.get_engine()
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def downgrade(revision, engine=None):
    """Take the schema down to ``revision`` (``base`` removes every table)."""
    engine = engine or db_api.get_engine()
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)


def current_version(engine=None):
    """The revision the database is at, or None for an empty database."""
    engine = engine or db_api.get_engine()
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@functools.lru_cache(maxsize=1)
def head_version():
    """The newest revision this code knows (read from disk once: it cannot
    change while the process runs)."""
    directory = migrations_dir()
    cfg = Config(os.path.join(directory, "alembic.ini"))
    cfg.set_main_option("script_location", directory)
    return ScriptDirectory.from_config(cfg).get_current_head()
