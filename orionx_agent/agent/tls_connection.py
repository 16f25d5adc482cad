"""TLS over a plain socket for the gateway, with its state in memory BIOs.

The gateway reads HELLO from a TLS connection with blocking calls (``recv``,
``recv_into``, ``sendall``, ``settimeout``), then hands it to the relay
loop, which drives many connections from one thread and must never block:
the ``relay_*`` methods are its non-blocking half (the socket is made
non-blocking first). Keeping the TLS state in memory BIOs rather than an
``ssl.SSLSocket`` is what allows both: ciphertext moves between the socket
and the BIOs under this object's control, records the TLS object produced
wait here until the socket takes them, and plaintext already decrypted
(past HELLO) is still there for the relay. Every use of the TLS object is
under one lock, which keeps records in order.

The object looks enough like a socket for the HELLO reader and the relay:
``recv``, ``recv_into``, ``sendall``, ``shutdown``, ``close``, ``family``,
``sock``. It has no ``fileno``: the relay must never splice its encrypted
bytes.
"""

import errno
import socket
import ssl
import threading

RECV_BYTES = 256 * 1024


class TlsConnection:
    def __init__(self, sock, context, server_side, server_hostname=None):
        self.sock = sock
        self.family = sock.family
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=server_side,
                                     server_hostname=server_hostname)
        self._lock = threading.Lock()
        self._unsent = bytearray()  # records the relay could not send yet
        # Ciphertext is read into this one buffer: recv(n) would allocate n
        # bytes (an mmap at this size) for every read, however few arrive.
        self._received = memoryview(bytearray(RECV_BYTES))

    def _flush(self):
        """Send the records the TLS object produced; caller holds the lock."""
        pending = self._outgoing.read()
        if pending:
            self.sock.sendall(pending)

    def _feed(self):
        """Read ciphertext from the socket (no lock held); False at its end."""
        count = self.sock.recv_into(self._received)
        with self._lock:
            if count:
                self._incoming.write(self._received[:count])
            else:
                self._incoming.write_eof()
        return bool(count)

    def handshake(self, timeout_s):
        """Complete the TLS handshake within ``timeout_s``; ssl.SSLError or
        OSError (TimeoutError included) when it fails."""
        self.sock.settimeout(timeout_s)
        try:
            while True:
                with self._lock:
                    try:
                        self._tls.do_handshake()
                        self._flush()
                        return
                    except ssl.SSLWantReadError:
                        self._flush()
                if not self._feed():
                    raise ConnectionResetError("the peer closed the connection during the "
                                               "TLS handshake")
        finally:
            self.sock.settimeout(None)

    def recv(self, nbytes):
        """Up to ``nbytes`` of plaintext; b"" when the peer ended the session."""
        while True:
            with self._lock:
                try:
                    data = self._tls.read(nbytes)
                    self._flush()  # a read may answer a key update
                    return data
                except ssl.SSLWantReadError:
                    self._flush()
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    return b""
            if not self._feed():
                with self._lock:
                    try:
                        return self._tls.read(nbytes)
                    except (ssl.SSLWantReadError, ssl.SSLZeroReturnError, ssl.SSLEOFError):
                        return b""

    def recv_into(self, view):
        data = self.recv(len(view))
        view[:len(data)] = data
        return len(data)

    def sendall(self, data):
        view = memoryview(data)
        while view:
            with self._lock:
                # Into the memory BIO, a record at a time; sent before the
                # next chunk so ciphertext never piles up here.
                written = self._tls.write(view[:RECV_BYTES])
                self._flush()
            view = view[written:]

    # -- non-blocking, for the relay loop ----------------------------------

    def relay_recv_into(self, view):
        """Plaintext into ``view``: its count, 0 at the session's end;
        BlockingIOError when none is to be had without waiting."""
        while True:
            with self._lock:
                try:
                    return self._tls.read(len(view), view)
                except ssl.SSLWantReadError:
                    pass
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    return 0
                finally:
                    # A read may answer a key update: sent with the next flush.
                    self._unsent += self._outgoing.read()
            count = self.sock.recv_into(self._received)  # BlockingIOError: wait for more
            with self._lock:
                if count:
                    self._incoming.write(self._received[:count])
                else:
                    self._incoming.write_eof()

    def relay_send(self, view):
        """Encrypt up to a record's worth of ``view``; its count.
        BlockingIOError while earlier records still wait for the socket."""
        if len(self._unsent) >= RECV_BYTES and not self.relay_flush():
            raise BlockingIOError(errno.EAGAIN, "TLS records wait for the socket")
        with self._lock:
            written = self._tls.write(view[:RECV_BYTES])
            self._unsent += self._outgoing.read()
        self.relay_flush()
        return written

    def relay_flush(self):
        """Send waiting records as far as the socket takes them; True once
        none wait."""
        while self._unsent:
            try:
                sent = self.sock.send(self._unsent)
            except (BlockingIOError, InterruptedError):
                return False
            del self._unsent[:sent]
        return True

    def relay_buffered(self):
        """Whether bytes wait inside, decrypted or not yet: the socket's
        readiness does not show them."""
        return bool(self._tls.pending() or self._incoming.pending)

    def relay_has_output(self):
        return bool(self._unsent)

    def shutdown(self, how=socket.SHUT_RDWR):
        self.sock.shutdown(how)

    def setsockopt(self, *args):
        self.sock.setsockopt(*args)

    def settimeout(self, timeout_s):
        self.sock.settimeout(timeout_s)

    def close(self):
        self.sock.close()
