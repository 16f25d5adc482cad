"""Where the runtime connects: configuration and the process's connection.

Configuration comes from :func:`configure` or, by default, the environment
that ``orionx-run`` sets:

* ``ORIONX_ENDPOINT``: comma-separated ``unix:PATH``, ``tcp:HOST:PORT``,
  ``tls:HOST:PORT``; the fastest reachable one is used;
* ``ORIONX_TOKEN``: the session token from the controller;
* ``ORIONX_TRANSPORT``: ``auto`` (default), ``shm``, ``unix``, ``tcp``, ``tls``;
* ``ORIONX_VGPU_INDEX``: which of the token's vGPUs on that server (default 0);
* ``ORIONX_TLS_CA_FILE``: CA bundle that signed the server's certificate.
"""

import os
import threading

from guest_runtime.client import Connection
from guest_runtime.curesult import CudaError, CUresult

_lock = threading.Lock()
_settings = {}
_connection = None


def configure(endpoint=None, token=None, transport=None, vgpu_index=None, tls_ca_file=None):
    """Override the environment for this process; call before cuInit."""
    values = {"endpoint": endpoint, "token": token, "transport": transport,
              "vgpu_index": vgpu_index, "tls_ca_file": tls_ca_file}
    _settings.update({k: v for k, v in values.items() if v is not None})


def _setting(name, env_name, default=None):
    return _settings.get(name, os.environ.get(env_name, default))


def connection():
    """The process's connection, opened on first use; CudaError if impossible."""
    global _connection
    with _lock:
        if _connection is None or _connection.ended is not None:
            endpoint = _setting("endpoint", "ORIONX_ENDPOINT")
            token = _setting("token", "ORIONX_TOKEN")
            if not endpoint or not token:
                raise CudaError(CUresult.CUDA_ERROR_NO_DEVICE,
                                "no OrionX GPU server configured: run the program under "
                                "orionx-run, or set ORIONX_ENDPOINT and ORIONX_TOKEN")
            _connection = Connection(
                endpoint, token,
                vgpu_index=int(_setting("vgpu_index", "ORIONX_VGPU_INDEX", 0)),
                transport=_setting("transport", "ORIONX_TRANSPORT", "auto"),
                tls_ca_file=_setting("tls_ca_file", "ORIONX_TLS_CA_FILE"))
        return _connection


def current():
    """The open connection, or None before cuInit."""
    return _connection


def reset():
    """Close the connection and forget configure()'s settings (tests use it)."""
    global _connection
    with _lock:
        if _connection is not None:
            _connection.close()
        _connection = None
        _settings.clear()
