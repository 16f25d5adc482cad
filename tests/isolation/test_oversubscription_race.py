"""Oversubscription under parallel tenants: what fits once other sessions'
buffers move to host RAM is served. Three tenants hold 240 MB on 128 MB of
physical memory (ratio 2.0), allocating, writing, reading back and
freeing all at once; none may be told CUDA_ERROR_OUT_OF_MEMORY, which
docs/qos.md keeps for a session that alone exceeds what it may hold."""

import hashlib
import threading

import numpy as np
import pytest

from tests.qos.conftest import MB, open_session, qos_server  # noqa: F401  (fixtures)

PHYSICAL_MB = 128
TENANTS = 3
TENANT_MB = 80
CHUNK_MB = 16
ROUNDS = 4


def _tenant(connection, seed, failures):
    rng = np.random.default_rng(seed)
    try:
        for _ in range(ROUNDS):
            held = []
            for _ in range(TENANT_MB // CHUNK_MB):
                (dptr,) = connection.mem_alloc(CHUNK_MB * MB)
                data = rng.integers(0, 255, CHUNK_MB * MB, dtype=np.uint8).tobytes()
                connection.memcpy_htod(dptr, buffer=data)
                held.append((dptr, hashlib.sha256(data).digest()))
            for dptr, digest in held:
                (data,) = connection.memcpy_dtoh(dptr, CHUNK_MB * MB, 0)
                assert hashlib.sha256(data).digest() == digest, "a buffer changed"
            for dptr, _ in held:
                connection.mem_free(dptr)
            connection.ctx_synchronize()
    except Exception as exc:  # reported with the others'
        failures.append(exc)


@pytest.mark.parametrize("run", range(5))
def test_parallel_tenants_on_twice_the_physical_memory_are_all_served(
        qos_server, open_session, run):  # noqa: F811
    server = qos_server(memory_mb=PHYSICAL_MB, oversub_ratio=2.0)
    connections = [open_session(server, allocation_id="alloc-%d" % i, vgpu_id="v%d" % i,
                                memory_mb=TENANT_MB) for i in range(TENANTS)]
    failures = []
    threads = [threading.Thread(target=_tenant, args=(c, 10 * run + i, failures))
               for i, c in enumerate(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
