"""The server's side of SHM_ATTACH: create a session's shared-memory segment
and its doorbells, and send them to the client with SCM_RIGHTS. Both ends
then use ``guest_runtime.shm_ring.ShmRingStream`` over it."""

import array
import fcntl
import os
import socket

from guest_runtime.shm_ring import EVENTFD_ROLES, segment_bytes


def create_segment(ring_bytes):
    """A new segment and its doorbells: (memfd, [eventfd x 4])."""
    memfd = os.memfd_create("orionx-session", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.ftruncate(memfd, segment_bytes(ring_bytes))
    # Sealed at its size: a client that shrank it would make the server's
    # next access to the mapping a fatal SIGBUS.
    fcntl.fcntl(memfd, fcntl.F_ADD_SEALS,
                fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
    # Blocking: a sleeper waits in a single read (the flag is shared with
    # the peer, which gets the same open file description).
    eventfds = [os.eventfd(0, os.EFD_CLOEXEC) for _ in EVENTFD_ROLES]
    return memfd, eventfds


def send_with_fds(sock, data, fds):
    """Send ``data`` over the unix socket ``sock`` with ``fds`` attached."""
    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
    sent = sock.sendmsg([data], ancillary)
    if sent < len(data):
        sock.sendall(memoryview(data)[sent:])
