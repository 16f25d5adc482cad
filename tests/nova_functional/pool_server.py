"""The pool for the Nova functional tests, in its own process: orionx-api
(``noauth``) on a migrated SQLite database, with each named host registered
with two simulated GPUs. Its own process because the controller's
configuration and Nova's cannot share one (both define ``[DEFAULT] host``
and ``[database]``).

``python -m tests.nova_functional.pool_server STATE_DIR PORT HOST[:GPU_COUNT]...``
(two GPUs per host unless a count is given).
"""

import sys

import waitress

GPU_MEMORY_MB = 16384


def gpu_uuid(hostname, index):
    """Deterministic NVML-style uuids, so tests know the provider uuids."""
    number = sum(hostname.encode()) * 16 + index
    return "GPU-%08x-0000-4000-8000-%012x" % (number, index)


def host_gpus(hostname, count=2):
    return [{"uuid": gpu_uuid(hostname, index), "index": index, "model": "Simulated GPU",
             "memory_mb": GPU_MEMORY_MB} for index in range(count)]


def main(argv):
    state_dir, port, hostnames = argv[1], int(argv[2]), argv[3:]
    from orionx_nova.api import app as api_app
    from orionx_nova.conf import CONF
    from orionx_nova.db import api as db_api
    from orionx_nova.db import migration
    from orionx_nova.objects import nodes

    CONF([], project="orionx", default_config_files=[])
    CONF.set_override("state_dir", state_dir)
    CONF.set_override("auth_strategy", "noauth", group="api")
    engine = db_api.create_engine("sqlite:///%s/orionx.sqlite" % state_dir)
    migration.upgrade(engine=engine)
    db_api.configure(engine)
    for host in hostnames:
        hostname, _, count = host.partition(":")
        nodes.register(hostname, host_gpus(hostname, int(count or 2)))
    print("pool ready on %d" % port, flush=True)
    waitress.serve(api_app.create_app(), host="127.0.0.1", port=port, threads=4,
                   _quiet=True)


if __name__ == "__main__":
    main(sys.argv)
