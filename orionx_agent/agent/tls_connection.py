"""TLS over a plain socket for the gateway, usable by two threads at once.

A relay reads from each side in its own thread, so one TLS connection is
read by one thread while another writes to it. An ``ssl.SSLSocket`` must not
be used like that (OpenSSL forbids concurrent use of one SSL object), so the
TLS state lives in memory BIOs instead: the socket is read outside any lock,
and every use of the TLS object, with the sending of the records it
produced, happens under one lock, which keeps records in order.

The object looks enough like a socket for the relay and the HELLO reader:
``recv``, ``recv_into``, ``sendall``, ``shutdown``, ``close``, ``family``.
It has no ``fileno``: the relay must never splice its encrypted bytes.
"""

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

    def _flush(self):
        """Send the records the TLS object produced; caller holds the lock."""
        pending = self._outgoing.read()
        if pending:
            self.sock.sendall(pending)

    def _feed(self):
        """Read ciphertext from the socket (no lock held); False at its end."""
        data = self.sock.recv(RECV_BYTES)
        with self._lock:
            if data:
                self._incoming.write(data)
            else:
                self._incoming.write_eof()
        return bool(data)

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

    def shutdown(self, how=socket.SHUT_RDWR):
        self.sock.shutdown(how)

    def setsockopt(self, *args):
        self.sock.setsockopt(*args)

    def settimeout(self, timeout_s):
        self.sock.settimeout(timeout_s)

    def close(self):
        self.sock.close()
