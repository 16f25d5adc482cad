"""Alembic environment of the controller database.

The database URL comes from, in order: an engine or URL handed over by
``orionx-manage`` (``config.attributes``), ``sqlalchemy.url`` in the Alembic
config, or ``[database] connection`` of the oslo config named by
``ORIONX_CONFIG_FILE``.
"""

import logging.config
import os

from alembic import context

from orionx_nova.db import models

config = context.config
target_metadata = models.Base.metadata


def _url():
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from orionx_common import config as orionx_config
    from orionx_nova.db import api as db_api

    config_file = os.environ.get("ORIONX_CONFIG_FILE")
    orionx_config.parse_args([], default_config_files=[config_file] if config_file else None)
    return db_api.connection_url()


def run_migrations_offline():
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    from orionx_nova.db import api as db_api

    engine = db_api.create_engine(_url())
    try:
        with engine.connect() as connection:
            _run_with(connection)
    finally:
        engine.dispose()


def _run_with(connection):
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if config.config_file_name and not config.attributes.get("connection"):
    if config.attributes.get("configure_logging", True):
        logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
