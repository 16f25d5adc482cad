"""Listening unix sockets of the host side (GPU servers, their control
channels, the agent's gateway): one way to create them over a stale socket
of a crashed run, with the right mode from the start, and to remove them."""

import contextlib
import os
import socket

DEFAULT_BACKLOG = 128


def listen(path, mode=0o660, backlog=DEFAULT_BACKLOG):
    """A listening socket at ``path``, replacing a stale one. The socket file
    is created with ``mode`` through the umask, so there is no window in
    which it is more open than that."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    remove(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o777 & ~mode)
    try:
        sock.bind(path)
    except OSError:
        sock.close()
        raise
    finally:
        os.umask(old_umask)
    sock.listen(backlog)
    return sock


def remove(path):
    """Delete the socket file at ``path`` if it is there."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def close(sockets, path=None):
    """Close listening ``sockets`` (their accept loops then end) and remove
    the socket file at ``path``."""
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.close()
    if path:
        remove(path)
