"""The revocation cases of tests/unit/scheduler/test_revocation.py (held
capacity, generations, the revoked map, reconciliation, reaping) on
PostgreSQL and MariaDB, whose row locks and SQL differ from SQLite's."""

import pytest

from orionx_nova.conf import CONF
from orionx_nova.db import api as db_api
from orionx_nova.db import migration
from orionx_nova.objects import notifier
from tests.unit.scheduler import test_revocation as cases
from tests.unit.scheduler.conftest import RecordingNotifier


@pytest.fixture(params=["postgresql", "mariadb"])
def pool_db(request, conf):
    engine = db_api.create_engine(request.getfixturevalue("%s_url" % request.param))
    migration.upgrade(engine=engine)
    db_api.configure(engine)
    recorder = RecordingNotifier()
    notifier.set_notifier(recorder)
    yield recorder
    notifier.set_notifier(None)
    db_api.dispose()


@pytest.fixture
def secret(pool_db):
    CONF.set_override("session_secret", cases.SECRET)
    yield pool_db
    CONF.clear_override("session_secret")


test_capacity_is_not_handed_on_while_a_session_holds_it = \
    cases.test_capacity_is_not_handed_on_while_a_session_holds_it
test_held_capacity_is_handed_on_after_the_timeout_or_when_the_host_is_down = \
    cases.test_held_capacity_is_handed_on_after_the_timeout_or_when_the_host_is_down
test_every_ended_binding_bumps_the_generation_and_is_revoked = \
    cases.test_every_ended_binding_bumps_the_generation_and_is_revoked
test_a_restarted_agent_unbinds_acquire_bindings_it_runs_no_session_of = \
    cases.test_a_restarted_agent_unbinds_acquire_bindings_it_runs_no_session_of
test_abandoned_acquire_allocations_are_deleted_with_an_event = \
    cases.test_abandoned_acquire_allocations_are_deleted_with_an_event
