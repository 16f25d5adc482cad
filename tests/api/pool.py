"""A throwaway pool for API tests: a migrated SQLite database with two hosts
of two simulated 16 GB GPUs each, one user per role and the Flask app."""

import contextlib
import uuid

import argon2

from orionx_nova.api import app as api_app
from orionx_nova.api import policy
from orionx_nova.conf import CONF
from orionx_nova.db import api as db_api
from orionx_nova.db import migration, models
from orionx_nova.objects import notifier, users

GPU_MEMORY_MB = 16384
HOSTS = ("host-a", "host-b")
GPUS_PER_HOST = 2
PASSWORD = "correct horse battery"

# name -> (role, project). "other" is an operator of another project, to
# prove projects cannot see each other's allocations.
USERS = {
    "admin": ("admin", "ops"),
    "operator": ("operator", "alpha"),
    "viewer": ("viewer", "alpha"),
    "other": ("operator", "beta"),
    "homeless": ("operator", None),
}

# The default argon2 cost is right for production and far too slow for
# tests that create a user per role.
_CHEAP_HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class RecordingNotifier:
    """Keeps the casts the controller would send to agents."""

    def __init__(self):
        self.casts = []

    def __getattr__(self, method):
        return lambda ctxt, host, **kwargs: self.casts.append((method, host, kwargs))


class Pool:
    def __init__(self, app, ids, tokens, casts):
        self.app = app
        self.client = app.test_client()
        self.ids = ids
        self.tokens = tokens
        self.casts = casts

    def headers(self, who):
        if who in (None, "none"):
            return {}
        return {"Authorization": "Bearer " + self.tokens.get(who, who)}


def _seed_gpus(session):
    ids = {}
    for host in HOSTS:
        node = models.Node(uuid=str(uuid.uuid4()), hostname=host, state="up",
                           last_heartbeat_at=models.utcnow(), endpoints="{}")
        session.add(node)
        session.flush()
        ids["node_" + host[-1]] = node.uuid
        for index in range(GPUS_PER_HOST):
            gpu = models.PhysicalGpu(uuid=str(uuid.uuid4()), node_id=node.id, index=index,
                                     model="SIM-16G", memory_mb=GPU_MEMORY_MB)
            session.add(gpu)
            ids["gpu_%s%d" % (host[-1], index)] = gpu.uuid
    return ids


@contextlib.contextmanager
def make_pool(tmp_dir, auth_strategy="local", monkeypatch=None, database_url=None):
    """Yield a :class:`Pool` (on SQLite in ``tmp_dir`` unless
    ``database_url`` names an empty database); every global it touched is
    restored afterwards."""
    CONF([], project="orionx", default_config_files=[])
    CONF.set_override("state_dir", str(tmp_dir))
    CONF.set_override("auth_strategy", auth_strategy, group="api")
    engine = db_api.create_engine(database_url or "sqlite:///%s/orionx.sqlite" % tmp_dir)
    migration.upgrade(engine=engine)
    db_api.configure(engine)
    policy.reset()
    saved_hasher = users._hasher
    users._hasher = _CHEAP_HASHER
    recorder = RecordingNotifier()
    notifier.set_notifier(recorder)
    try:
        with db_api.transaction() as session:
            ids = _seed_gpus(session)
        tokens = {}
        for name, (role, project) in USERS.items():
            users.create(name, PASSWORD, role, project_id=project)
            tokens[name] = users.issue_token(name, PASSWORD)["token"]
        yield Pool(api_app.create_app(), ids, tokens, recorder.casts)
    finally:
        notifier.set_notifier(None)
        users._hasher = saved_hasher
        policy.reset()
        db_api.dispose()
        CONF.clear_override("auth_strategy", group="api")
        CONF.clear_override("state_dir")
        CONF.reset()
