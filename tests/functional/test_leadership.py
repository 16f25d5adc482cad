"""One controller at a time runs the background loops: elected through tooz
on a real PostgreSQL and MariaDB (advisory locks), handed over when the
leader stops or its database session dies, and with two controllers on one
database the usage history is written by one sampler only."""

import time

import oslo_messaging as messaging
import pytest
import sqlalchemy as sa

from orionx_common import controller_rpcapi
from orionx_nova.controller import leadership, service
from orionx_nova.db import api as db_api
from orionx_nova.db import migration, models

INTERVAL_S = 0.2


def tooz_url(sqlalchemy_url):
    """The tooz URL of a test database: plain scheme, no driver or options."""
    scheme, rest = sqlalchemy_url.split("://", 1)
    return "%s://%s" % (scheme.split("+")[0], rest.split("?")[0])


@pytest.fixture(params=["postgresql", "mariadb"])
def backend_url(request):
    return tooz_url(request.getfixturevalue("%s_url" % request.param))


def _wait(predicate, timeout_s=10, what="condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("%s not reached in %d s" % (what, timeout_s))


def _leaders(candidates):
    return [c for c in candidates if c.is_leader()]


def test_one_leader_and_a_standby_takes_over(backend_url):
    first = leadership.Leadership(backend_url, "ctl-1", INTERVAL_S).start()
    _wait(first.is_leader, what="the first to ask leading")
    second = leadership.Leadership(backend_url, "ctl-2", INTERVAL_S).start()
    try:
        time.sleep(5 * INTERVAL_S)
        assert _leaders([first, second]) == [first]
        first.stop()
        _wait(second.is_leader, what="the standby leading")
        assert not first.is_leader()
    finally:
        first.stop()
        second.stop()


def _kill_lock_session(backend_url, lock):
    """End the leader's database session from outside, as a database
    restart or a network cut would."""
    connection = lock._conn
    if backend_url.startswith("postgresql"):
        pid = connection.get_backend_pid()
        statement = "SELECT pg_terminate_backend(%d)" % pid
    else:
        statement = "KILL %d" % connection.thread_id()
    engine = sa.create_engine(backend_url.replace("mysql://", "mysql+pymysql://")
                              .replace("postgresql://", "postgresql+psycopg2://"))
    try:
        with engine.begin() as admin:
            admin.execute(sa.text(statement))
    finally:
        engine.dispose()


def test_leader_whose_database_session_dies_steps_down(backend_url):
    first = leadership.Leadership(backend_url, "ctl-1", INTERVAL_S).start()
    _wait(first.is_leader, what="the first to ask leading")
    second = leadership.Leadership(backend_url, "ctl-2", INTERVAL_S).start()
    try:
        _kill_lock_session(backend_url, first._lock)
        # The lock went with the session: the standby takes it, and the old
        # leader notices it no longer holds it.
        _wait(lambda: _leaders([first, second]) == [second], what="the lead handed over")
        time.sleep(5 * INTERVAL_S)
        assert _leaders([first, second]) == [second]
    finally:
        first.stop()
        second.stop()


def test_without_a_backend_the_controller_leads():
    alone = leadership.Leadership(None, "ctl", INTERVAL_S).start()
    assert alone.is_leader()
    alone.stop()


def test_unreachable_backend_means_no_lead_and_a_clear_log(caplog):
    # Nothing listens on port 9 of loopback: the attempt fails every time.
    candidate = leadership.Leadership("postgresql://nobody@127.0.0.1:9/none", "ctl",
                                      INTERVAL_S).start()
    try:
        time.sleep(3 * INTERVAL_S)
        assert not candidate.is_leader()
    finally:
        candidate.stop()
    assert "cannot reach the coordination backend ([coordination] backend_url)" in caplog.text
    # Said once, not at every attempt.
    assert caplog.text.count("cannot reach the coordination backend") == 1


GPUS = [{"uuid": "GPU-1eade700-0000-0000-0000-000000000000", "index": 0,
         "model": "Simulated GPU", "pci_address": "0000:3b:00.0", "memory_mb": 16384}]


def _sample_times():
    table = models.GpuUsageSample.__table__
    with db_api.transaction() as session:
        return sorted(session.execute(sa.select(table.c.sampled_at)).scalars())


def test_two_controllers_write_each_usage_sample_once(conf, sqlite_url, postgresql_url,
                                                      rabbit_url):
    engine = db_api.create_engine(sqlite_url)
    migration.upgrade(engine=engine)
    db_api.configure(engine)
    conf.set_override("sample_interval_s", 1, group="history")
    conf.set_override("backend_url", tooz_url(postgresql_url), group="coordination")
    conf.set_override("election_interval_s", INTERVAL_S, group="coordination")
    transport = messaging.get_rpc_transport(conf, url=rabbit_url)
    controllers = [service.ControllerService(transport=transport) for _ in range(2)]
    running = list(controllers)
    try:
        for controller in controllers:
            controller.start()
        controller_rpcapi.ControllerAPI(transport=transport, timeout_s=30).register(
            {}, "host-1", GPUS)
        _wait(lambda: len(_sample_times()) >= 4, 30, "four samples")
        (leader,) = [c for c in controllers if c.leadership.is_leader()]
        times = _sample_times()
        # One sampler: a whole interval between samples. Two would write
        # them in pairs, or interleaved, less than an interval apart.
        gaps_s = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
        assert min(gaps_s) >= 0.9, gaps_s
        # The leader stops: the other controller samples on.
        running.remove(leader)
        leader.stop()
        count = len(_sample_times())
        _wait(lambda: len(_sample_times()) >= count + 2, 30, "samples after the hand-over")
    finally:
        for controller in running:
            controller.stop()
        transport.cleanup()
        db_api.dispose()
        for name, group in (("sample_interval_s", "history"), ("backend_url", "coordination"),
                            ("election_interval_s", "coordination")):
            conf.clear_override(name, group=group)
