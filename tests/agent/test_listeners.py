"""The one accept loop of the host side: each connection to its handler in a
thread of its own, a failing handler never ends the loop, stop() ends it."""

import os
import socket
import stat
import threading
import time

import pytest

from orionx_agent import listeners


def _connect(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    return sock


def test_each_connection_reaches_the_handler_and_stop_ends_the_loop(tmp_path):
    path = str(tmp_path / "listen.sock")
    served, release = [], threading.Event()

    def handle(conn, _address):
        served.append(threading.current_thread().name)
        if len(served) == 1:
            raise RuntimeError("a bug in one connection's handler")
        release.wait(5)
        conn.sendall(b"ok")
        conn.close()

    loop = listeners.AcceptLoop(listeners.listen_unix(path, mode=0o600), handle,
                                "orionx-test", path=path).start()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    first, second, third = _connect(path), _connect(path), _connect(path)
    assert first.recv(16) == b""  # the failed handler's connection was closed
    release.set()
    assert second.recv(16) == b"ok" and third.recv(16) == b"ok"
    assert served == ["orionx-test"] * 3
    loop.stop()
    assert not loop._thread.is_alive()
    assert not os.path.exists(path)
    with pytest.raises(OSError):
        _connect(path)
    for sock in (first, second, third):
        sock.close()


def test_a_tcp_listener_reports_its_port_and_threads_can_be_joined():
    threads = listeners.ConnectionThreads()
    started, finished = threading.Event(), threading.Event()

    def handle(conn, _address):
        started.set()
        conn.recv(1)
        finished.set()
        conn.close()

    loop = listeners.AcceptLoop(listeners.listen_tcp(("127.0.0.1", 0)), handle,
                                "orionx-test-tcp", threads=threads).start()
    client = socket.create_connection(loop.address)
    assert started.wait(5)
    threading.Timer(0.2, client.sendall, (b"x",)).start()
    threads.join(time.monotonic() + 5)  # waits for the handler, which waits for the byte
    assert finished.is_set()
    loop.stop()
    client.close()


def test_a_stale_socket_file_is_replaced(tmp_path):
    path = str(tmp_path / "stale.sock")
    stale = listeners.listen_unix(path)
    stale.close()  # a crashed run leaves its file behind
    fresh = listeners.listen_unix(path)
    _connect(path).close()
    fresh.close()
