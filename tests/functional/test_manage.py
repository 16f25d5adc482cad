"""``orionx-manage db sync`` builds a working SQLite database from nothing."""

import os
import sqlite3
import subprocess
import sys

from orionx_nova.db import migration


def _manage(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "orionx_nova.cmd.manage", *args],
        capture_output=True, text=True, timeout=120, cwd=cwd,
    )


def test_db_sync_from_nothing_then_version(tmp_path):
    state_dir = tmp_path / "state" / "nested"
    config_file = tmp_path / "orionx.conf"
    config_file.write_text("[DEFAULT]\nstate_dir = %s\n" % state_dir)

    head = migration.head_version()
    sync = _manage("--config-file", str(config_file), "db", "sync", cwd=tmp_path)
    assert sync.returncode == 0, sync.stderr
    assert "is at revision %s (was empty)" % head in sync.stdout

    database = state_dir / "orionx.sqlite"
    assert database.is_file()
    with sqlite3.connect(database) as connection:
        journal_mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
        tables = {row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert journal_mode == "wal"
    assert {"nodes", "physical_gpus", "allocations", "vgpus", "events", "users",
            "api_tokens"} <= tables

    version = _manage("--state-dir", str(state_dir), "db", "version", cwd=tmp_path)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip().splitlines()[-1] == head

    again = _manage("--state-dir", str(state_dir), "db", "sync", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "(was %s)" % head in again.stdout
    assert os.stat(database).st_size > 0


def test_db_sync_reports_unreachable_database(tmp_path):
    config_file = tmp_path / "orionx.conf"
    config_file.write_text(
        "[database]\nconnection = postgresql+psycopg2://nobody@127.0.0.1:1/none\n")
    result = _manage("--config-file", str(config_file), "db", "sync", cwd=tmp_path)
    assert result.returncode != 0
    assert "127.0.0.1" in result.stderr and "Traceback" not in result.stderr
