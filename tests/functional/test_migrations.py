"""The Alembic migrations produce exactly the models' schema, and downgrade
to base removes it, on SQLite, PostgreSQL and MariaDB."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from orionx_nova.db import api as db_api
from orionx_nova.db import migration, models


def _schema_differences(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, models.Base.metadata)


def _user_tables(engine):
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def database_url(request, conf):
    return request.getfixturevalue("%s_url" % request.param)


def test_upgrade_matches_models_and_downgrade_empties(database_url):
    engine = db_api.create_engine(database_url)
    try:
        migration.upgrade(engine=engine)
        assert migration.current_version(engine) == migration.head_version()
        assert _user_tables(engine) == set(models.Base.metadata.tables)
        assert _schema_differences(engine) == []

        migration.downgrade("base", engine=engine)
        assert _user_tables(engine) == set()
        assert migration.current_version(engine) is None
    finally:
        engine.dispose()


def test_schema_enforces_foreign_keys_and_checks(database_url):
    """Constraints are live on every backend (SQLite needs a pragma for
    foreign keys): a vGPU of a missing allocation and an unknown pool fail."""
    engine = db_api.create_engine(database_url)
    try:
        migration.upgrade(engine=engine)
        with pytest.raises(sa.exc.IntegrityError):
            with engine.begin() as connection:
                connection.execute(sa.text(
                    "INSERT INTO vgpus (uuid, allocation_id, %s, compute_pct, memory_mb) "
                    "VALUES ('v', 999, 0, 10, 10)" % engine.dialect.identifier_preparer.quote(
                        "index")))
        # MariaDB reports a failed CHECK as an OperationalError (4025).
        with pytest.raises((sa.exc.IntegrityError, sa.exc.OperationalError),
                           match="node_state"):
            with engine.begin() as connection:
                connection.execute(sa.text(
                    "INSERT INTO nodes (uuid, hostname, state, created_at) "
                    "VALUES ('n', 'h', 'gone', CURRENT_TIMESTAMP)"))
    finally:
        engine.dispose()


def test_existing_acquire_allocations_keep_unbinding_on_session_end(database_url):
    """0005 adds unbind_on_session_end: acquire-mode rows written before it
    keep the old rule (true), reserve-mode rows never unbind (false)."""
    engine = db_api.create_engine(database_url)
    try:
        migration.upgrade("0004", engine=engine)
        with engine.begin() as connection:
            for uuid, mode in (("a-acquire", "acquire"), ("a-reserve", "reserve")):
                connection.execute(sa.text(
                    "INSERT INTO allocations (uuid, mode, native, priority, preemptible, "
                    "can_preempt, requeue, allow_remote, state, created_at) VALUES (:uuid, "
                    ":mode, :no, 50, :no, :no, :no, :yes, 'queued', CURRENT_TIMESTAMP)"),
                    {"uuid": uuid, "mode": mode, "no": False, "yes": True})
        migration.upgrade(engine=engine)
        with engine.connect() as connection:
            rows = dict(connection.execute(sa.text(
                "SELECT uuid, unbind_on_session_end FROM allocations")).all())
        assert {uuid: bool(value) for uuid, value in rows.items()} == {
            "a-acquire": True, "a-reserve": False}
        migration.downgrade("base", engine=engine)
    finally:
        engine.dispose()


def test_existing_allocation_events_take_their_allocations_project(database_url):
    """0007 adds events.project_id: allocation events take their
    allocation's project; those of deleted allocations and of the pool's
    own objects keep none."""
    engine = db_api.create_engine(database_url)
    try:
        migration.upgrade("0006", engine=engine)
        with engine.begin() as connection:
            connection.execute(sa.text(
                "INSERT INTO allocations (uuid, project_id, mode, native, priority, "
                "preemptible, can_preempt, requeue, allow_remote, unbind_on_session_end, "
                "state, created_at) VALUES ('kept', 'alpha', 'reserve', :no, 50, :no, :no, "
                ":no, :yes, :no, 'queued', CURRENT_TIMESTAMP)"), {"no": False, "yes": True})
            for object_type, uuid in (("allocation", "kept"), ("allocation", "deleted"),
                                      ("gpu", "kept")):
                connection.execute(sa.text(
                    "INSERT INTO events (created_at, level, object_type, object_uuid, kind, "
                    "message) VALUES (CURRENT_TIMESTAMP, 'info', :type, :uuid, 'k', 'm')"),
                    {"type": object_type, "uuid": uuid})
        migration.upgrade(engine=engine)
        with engine.connect() as connection:
            rows = connection.execute(sa.text(
                "SELECT object_type, object_uuid, project_id FROM events ORDER BY id")).all()
        assert [tuple(row) for row in rows] == [
            ("allocation", "kept", "alpha"), ("allocation", "deleted", None),
            ("gpu", "kept", None)]
        migration.downgrade("base", engine=engine)
    finally:
        engine.dispose()


def test_gpu_usage_counters_keep_their_values_as_allocated(database_url):
    """0009 renames physical_gpus.used_* to allocated_* (and the
    scheduler's index over them); the values stay, both ways."""
    engine = db_api.create_engine(database_url)
    try:
        migration.upgrade("0008", engine=engine)
        with engine.begin() as connection:
            connection.execute(sa.text(
                "INSERT INTO nodes (uuid, hostname, state, created_at) "
                "VALUES ('n', 'h', 'up', CURRENT_TIMESTAMP)"))
            connection.execute(sa.text(
                "INSERT INTO physical_gpus (uuid, node_id, %s, model, memory_mb, pool, "
                "draining, memory_oversub_ratio, health, used_compute_pct, used_memory_mb, "
                "generation, created_at) SELECT 'g', id, 0, 'SIM', 16384, 'orionx', :no, 1.0, "
                "'healthy', 30, 4096, 7, CURRENT_TIMESTAMP FROM nodes"
                % engine.dialect.identifier_preparer.quote("index")), {"no": False})
        migration.upgrade(engine=engine)
        with engine.connect() as connection:
            row = connection.execute(sa.text(
                "SELECT allocated_compute_pct, allocated_memory_mb, generation "
                "FROM physical_gpus")).one()
        assert tuple(row) == (30, 4096, 7)
        indexes = {ix["name"] for ix in sa.inspect(engine).get_indexes("physical_gpus")}
        assert "ix_physical_gpus_pool_allocated" in indexes
        migration.downgrade("0008", engine=engine)
        with engine.connect() as connection:
            row = connection.execute(sa.text(
                "SELECT used_compute_pct, used_memory_mb FROM physical_gpus")).one()
        assert tuple(row) == (30, 4096)
        migration.downgrade("base", engine=engine)
    finally:
        engine.dispose()
