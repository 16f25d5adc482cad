"""Idle sessions of a GPU server hold no thread: after a moment without
frames a socket session waits on the server's selector, and its next
frame is served as before."""

import threading
import time

from guest_runtime.client import Connection
from orionx_agent.server.session import IDLE_PARK_S
from tests.dataplane.conftest import make_token

IDLE_SESSIONS = 100
MB = 1 << 20


def test_idle_sessions_give_their_threads_back(server):
    before = threading.active_count()
    # Two vGPUs: more sessions than one vGPU may open.
    tokens = [make_token(memory_mb=64, vgpu_id="vgpu-%d" % i, allocation_id="alloc-%d" % i)
              for i in range(2)]
    sessions = [Connection(server.endpoints[i % 2], tokens[i % 2],
                           transport="tcp" if i % 2 else "unix")
                for i in range(IDLE_SESSIONS)]
    (dptr,) = sessions[0].mem_alloc(MB)
    time.sleep(IDLE_PARK_S + 1.0)
    idle = threading.active_count()
    assert idle - before <= 5, "%d idle sessions took %d threads" % (
        IDLE_SESSIONS, idle - before)
    for connection in sessions:  # every one is served when it speaks again
        assert connection.mem_get_info()[1] == 64 * MB
    sessions[0].mem_free(dptr)
    sessions[0].ctx_synchronize()
    for connection in sessions:
        connection.close()
    deadline = time.monotonic() + 5
    while server.sessions() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not server.sessions()
