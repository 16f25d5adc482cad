"""The link between a KVM guest and its host's agent: a byte stream over a
vsock connection or a virtio-serial port, with bulk data through an ivshmem
region when the VM has one.

The link carries the wire protocol unchanged; the agent relays it to the GPU
server. Two things are added around it:

* a handshake: the guest sends :data:`GUEST_HELLO` (magic, version, whether
  it claimed the shared region and the nonce it wrote there), the agent
  answers :data:`AGENT_HELLO` with the vGPU count of the VM's allocation, or
  with a message saying why it cannot serve this VM. A VM needs no session
  token: the agent knows it by its vsock CID or its serial socket.
* records: each chunk of the stream is a 4-byte header (length, and whether
  the bytes follow inline or sit in the region's ring). ivshmem-plain has no
  interrupts, so the record on the channel is the doorbell; only the free
  space of a ring is polled, by a writer that filled it.

Region layout (both ends map the same bytes: the guest its PCI BAR 2, the
host ``/dev/shm/<name>``): a 4096-byte control page, then the guest-to-host
ring, then the host-to-guest ring, each half of the rest. The control page
holds, as u64 words, the nonce (word 0), bytes ever read from the
guest-to-host ring (word 8, written by the host) and from the host-to-guest
ring (word 16, written by the guest).

The same :class:`VmLinkStream` serves both ends (``role`` guest or host);
the guest's half of the handshake is here, the agent's in
``orionx_agent.agent.vm_link_host``.
"""

import os
import struct
import time

from guest_runtime.streams import ConnectionClosed

LINK_MAGIC = b"ORXV"
LINK_VERSION = 1
GUEST_HELLO = struct.Struct("<4sBBHQ")        # magic, version, flags, 0, region nonce
AGENT_HELLO = struct.Struct("<4sBBHI")        # magic, version, flags, vgpu count, message bytes
FLAG_REGION = 0x01
MESSAGE_MAX_BYTES = 4096

RECORD = struct.Struct("<I")
RECORD_IN_REGION = 1 << 31
RECORD_END = 1 << 30
RECORD_MAX_BYTES = (1 << 30) - 1

REGION_CONTROL_BYTES = 4096
_NONCE, _G2H_READ, _H2G_READ = 0, 1, 2      # u64 word indexes in the control page
# Parts smaller than this go inline: a record through the ring costs the
# same system call as an inline one, so only big copies gain from it.
REGION_MIN_BYTES = 16 << 10
# A writer whose ring is full polls the reader's progress, first briefly then
# less often; a reader that makes none for this long is taken as gone.
_FULL_POLL_FIRST_S = 0.0001
_FULL_POLL_MAX_S = 0.005
RING_STALL_TIMEOUT_S = 60.0
_READ_BUFFER_BYTES = 64 << 10


class SessionEnded(ConnectionClosed):
    """The peer ended this session with an END record; the channel stays."""


class LinkRefused(ConnectionError):
    """The agent answered the handshake with a refusal; the message says why."""


class SharedRegion:
    """An ivshmem region mapped by one end: its control words and two rings."""

    def __init__(self, mapping, role, held_fd=None):
        self._mapping = mapping
        self._held_fd = held_fd  # the guest's flock on the region, dropped on close
        whole = memoryview(mapping)
        if len(whole) < REGION_CONTROL_BYTES + 2 * 4096:
            raise ValueError("shared region of %d bytes is too small: it needs at least %d"
                             % (len(whole), REGION_CONTROL_BYTES + 2 * 4096))
        self.control = whole[:REGION_CONTROL_BYTES].cast("Q")
        self.ring_bytes = (len(whole) - REGION_CONTROL_BYTES) // 2
        start = REGION_CONTROL_BYTES
        g2h = whole[start:start + self.ring_bytes]
        h2g = whole[start + self.ring_bytes:start + 2 * self.ring_bytes]
        self._views = [whole, self.control, g2h, h2g]
        if role == "guest":
            self.tx, self.rx, self.tx_read_word, self.rx_read_word = g2h, h2g, _G2H_READ, _H2G_READ
        else:
            self.tx, self.rx, self.tx_read_word, self.rx_read_word = h2g, g2h, _H2G_READ, _G2H_READ

    @property
    def nonce(self):
        return self.control[_NONCE]

    def reset(self, nonce):
        """The guest starts a session on the region: fresh counters."""
        self.control[_G2H_READ] = 0
        self.control[_H2G_READ] = 0
        self.control[_NONCE] = nonce

    def close(self):
        for view in reversed(self._views):
            view.release()
        self._views = []
        try:
            self._mapping.close()
        except BufferError:
            pass
        if self._held_fd is not None:
            os.close(self._held_fd)
            self._held_fd = None


class VmLinkStream:
    """A transport stream (``send_parts``, ``recv_into``, ``recv_exact``)
    over a channel file descriptor and, optionally, a :class:`SharedRegion`.

    ``channel`` is a socket (vsock, or the unix socket of a serial port on
    the host) or a file object of ``/dev/virtio-ports/...`` in the guest;
    only its descriptor is used, with plain reads and writes.
    """

    def __init__(self, channel, kind, role, region=None):
        self.kind = kind
        self.channel = channel
        self._fd = channel.fileno()
        self.region = region
        self._role = role
        self._written = 0          # bytes ever put in our transmit ring
        self._read = 0             # bytes ever taken from our receive ring
        self._record_left = 0
        self._record_in_region = False
        self._buffer = bytearray(_READ_BUFFER_BYTES)
        self._view = memoryview(self._buffer)
        self._start = self._end = 0

    def use_region(self, region):
        """Start a session with ``region`` (or none): a serial port's link
        outlives its sessions, and each session starts its rings afresh."""
        if self.region is not None and self.region is not region:
            self.region.close()
        self.region = region
        self._written = self._read = 0

    # -- writing -------------------------------------------------------------

    def send_parts(self, parts):
        pending = []
        for part in parts:
            view = memoryview(part).cast("B")
            if self.region is not None and len(view) >= REGION_MIN_BYTES:
                self._write_all(pending)
                pending = []
                self._send_through_region(view)
            else:
                for offset in range(0, len(view), RECORD_MAX_BYTES):
                    chunk = view[offset:offset + RECORD_MAX_BYTES]
                    pending += [RECORD.pack(len(chunk)), chunk]
        self._write_all(pending)

    def send_handshake(self, data):
        """Bytes of the link handshake, which go before any record."""
        self._write_all([data])

    def recv_handshake(self, nbytes):
        return self._read_inline(nbytes)

    def send_end(self):
        """Tell the peer this session is over (a serial port stays open)."""
        try:
            self._write_all([RECORD.pack(RECORD_END)])
        except (OSError, ConnectionClosed):
            pass  # the peer is gone already

    def _send_through_region(self, view):
        ring = self.region.tx
        size = len(ring)
        done = 0
        while done < len(view):
            free = self._wait_for_space(size)
            position = self._written % size
            chunk = min(len(view) - done, free, size - position, size // 2)
            ring[position:position + chunk] = view[done:done + chunk]
            self._written += chunk
            done += chunk
            self._write_all([RECORD.pack(RECORD_IN_REGION | chunk)])

    def _wait_for_space(self, size):
        pause_s, waited_s = _FULL_POLL_FIRST_S, 0.0
        while True:
            free = size - (self._written - self.region.control[self.region.tx_read_word])
            if not 0 <= free <= size:
                raise ConnectionClosed("shared region corrupted by the peer: %d bytes free "
                                       "in a ring of %d" % (free, size))
            if free:
                return free
            if waited_s > RING_STALL_TIMEOUT_S:
                raise ConnectionClosed("the peer read nothing from the shared region for "
                                       "%d s; the session is taken as dead"
                                       % RING_STALL_TIMEOUT_S)
            time.sleep(pause_s)
            waited_s += pause_s
            pause_s = min(pause_s * 2, _FULL_POLL_MAX_S)

    def _write_all(self, pieces):
        for piece in pieces:
            view = memoryview(piece).cast("B")
            while len(view):
                try:
                    written = os.write(self._fd, view)
                except BrokenPipeError as exc:
                    raise ConnectionClosed("peer closed the link: %s" % exc) from None
                view = view[written:]

    # -- reading -------------------------------------------------------------

    def recv_into(self, view):
        view = view.cast("B") if view.format != "B" else view
        done = 0
        while done < len(view):
            done += self._take(view[done:])

    def recv_exact(self, nbytes):
        data = bytearray(nbytes)
        self.recv_into(memoryview(data))
        return bytes(data)

    def recv_some(self, max_bytes):
        """Whatever of the stream comes next, up to ``max_bytes`` (for relays)."""
        data = bytearray(max_bytes)
        count = self._take(memoryview(data))
        return bytes(data[:count])

    def _take(self, view):
        """Copy from the current record into ``view``; the count copied."""
        while not self._record_left:
            self._next_record()
        count = min(len(view), self._record_left)
        if self._record_in_region:
            self._copy_from_region(view[:count])
        else:
            count = self._copy_inline(view[:count])
        self._record_left -= count
        return count

    def _next_record(self):
        (header,) = RECORD.unpack(self._read_inline(RECORD.size))
        if header & RECORD_END:
            raise SessionEnded("the peer ended the session")
        self._record_in_region = bool(header & RECORD_IN_REGION)
        self._record_left = header & RECORD_MAX_BYTES
        if self._record_in_region and self.region is None:
            raise ConnectionClosed("the peer sent shared-region data on a link without one")

    def _copy_from_region(self, view):
        ring = self.region.rx
        size = len(ring)
        done = 0
        while done < len(view):
            position = self._read % size
            chunk = min(len(view) - done, size - position)
            view[done:done + chunk] = ring[position:position + chunk]
            done += chunk
            self._read += chunk
        self.region.control[self.region.rx_read_word] = self._read

    def _copy_inline(self, view):
        if self._start == self._end:
            if len(view) >= len(self._buffer) // 2:
                return self._read_channel(view)  # bulk: no staging copy
            self._fill()
        count = min(len(view), self._end - self._start)
        view[:count] = self._view[self._start:self._start + count]
        self._start += count
        return count

    def _read_inline(self, nbytes):
        data = bytearray(nbytes)
        done = 0
        while done < nbytes:
            done += self._copy_inline(memoryview(data)[done:])
        return bytes(data)

    def _fill(self):
        self._start, self._end = 0, self._read_channel(self._view)

    def _read_channel(self, view):
        try:
            count = os.readv(self._fd, [view])
        except ConnectionResetError as exc:
            raise ConnectionClosed("peer closed the link: %s" % exc) from None
        if not count:
            raise ConnectionClosed("peer closed the link")
        return count

    def close(self):
        """End the session and let go of the channel; a serial port stays
        open on the other side, so the peer is told first."""
        if self._fd is not None:
            self.send_end()
            self._fd = None
        if self.region is not None:
            self.region.close()
            self.region = None
        try:
            self.channel.close()
        except OSError:
            pass


# -- handshake -----------------------------------------------------------------

def guest_handshake(stream, region_nonce=None):
    """Guest side: announce the link; the VM's vGPU count, or LinkRefused."""
    flags = FLAG_REGION if region_nonce is not None else 0
    stream.send_handshake(GUEST_HELLO.pack(LINK_MAGIC, LINK_VERSION, flags, 0,
                                           region_nonce or 0))
    magic, version, flags, vgpu_count, message_bytes = AGENT_HELLO.unpack(
        stream.recv_handshake(AGENT_HELLO.size))
    if magic != LINK_MAGIC or version != LINK_VERSION:
        raise ConnectionClosed("the other end of the %s link is not an OrionX agent of link "
                               "version %d" % (stream.kind, LINK_VERSION))
    message = stream.recv_handshake(min(message_bytes, MESSAGE_MAX_BYTES)).decode(
        "utf-8", "replace")
    if not vgpu_count:
        raise LinkRefused(message or "the agent has no vGPU for this VM")
    if not flags & FLAG_REGION and stream.region is not None:
        stream.region.close()  # the agent cannot map it: everything inline
        stream.region = None
    return vgpu_count
