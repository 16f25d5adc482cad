"""Where the runtime connects: configuration and the process's connections,
one per device (vGPU).

Configuration comes from :func:`configure` or, by default, the environment
that ``orionx-run`` sets. Either a GPU server and a token:

* ``ORIONX_ENDPOINT``: comma-separated ``unix:PATH``, ``tcp:HOST:PORT``,
  ``tls:HOST:PORT``; the fastest reachable one is used;
* ``ORIONX_TOKEN``: the session token; a token naming several vGPUs gives
  as many devices, all on that endpoint;
* ``ORIONX_VGPU_INDEX``: the token's vGPU that device 0 is (default 0);

or an acquire-mode allocation, bound when the first context is created:

* ``ORIONX_CONTROLLER``: the controller's REST API URL;
* ``ORIONX_ALLOCATION``: the allocation's uuid; each of its vGPUs is one
  device, wherever it is placed (an allocation over two hosts is two devices);
* ``ORIONX_HOST``: the host this guest runs on (its agent routes it);

or, in a KVM guest with none of these set, the VM's own link to its host's
agent (virtio-vsock, else the virtio-serial port, with ivshmem for bulk
data: guest_runtime.vm_devices); the agent knows the VM and its vGPUs, so
no token is needed;

and for all:

* ``ORIONX_TRANSPORT``: ``auto`` (default), ``shm``, ``unix``, ``tcp``, ``tls``;
* ``ORIONX_TLS_CA_FILE``: CA bundle that signed the server's certificate.
"""

import base64
import json
import os
import threading

from guest_runtime import endpoints, vm_devices
from guest_runtime.client import Connection
from guest_runtime.curesult import CudaError, CUresult
from guest_runtime.endpoints import parse_endpoint
from guest_runtime.streams import ConnectionClosed

_lock = threading.Lock()
_settings = {}
_devices = None          # one _Device per device ordinal, after initialise()
_allocation = None       # AcquiredAllocation in acquire mode
_current = threading.local()


class _Device:
    def __init__(self, endpoint=None, token=None, vgpu_index=0):
        self.endpoint = endpoint
        self.token = token
        self.vgpu_index = vgpu_index
        self.connection = None


def configure(endpoint=None, token=None, transport=None, vgpu_index=None, tls_ca_file=None,
              controller=None, allocation=None, host=None):
    """Override the environment for this process; call before cuInit."""
    values = {"endpoint": endpoint, "token": token, "transport": transport,
              "vgpu_index": vgpu_index, "tls_ca_file": tls_ca_file,
              "controller": controller, "allocation": allocation, "host": host}
    _settings.update({k: v for k, v in values.items() if v is not None})


def _setting(name, env_name, default=None):
    return _settings.get(name, os.environ.get(env_name, default))


def _token_vgpu_count(token):
    """How many vGPUs a token names (read, not verified: the server verifies)."""
    try:
        payload = token.split(".")[1]
        body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return max(1, len(body["vgpus"]))
    except (IndexError, ValueError, KeyError, TypeError):
        return 1


def _discover_devices():
    global _allocation
    controller = _setting("controller", "ORIONX_CONTROLLER")
    allocation = _setting("allocation", "ORIONX_ALLOCATION")
    if controller and allocation:
        from guest_runtime.acquire import AcquiredAllocation
        _allocation = AcquiredAllocation(controller, allocation,
                                         _setting("host", "ORIONX_HOST"))
        return [_Device() for _ in range(_allocation.vgpu_count())]
    endpoint = _setting("endpoint", "ORIONX_ENDPOINT")
    token = _setting("token", "ORIONX_TOKEN")
    if not endpoint and not token:
        devices_of_this_vm = _vm_devices()
        if devices_of_this_vm:
            return devices_of_this_vm
    if not endpoint or not token:
        raise CudaError(CUresult.CUDA_ERROR_NO_DEVICE,
                        "no OrionX GPU server configured: run the program under "
                        "orionx-run, or set ORIONX_ENDPOINT and ORIONX_TOKEN (or "
                        "ORIONX_CONTROLLER and ORIONX_ALLOCATION)")
    first = int(_setting("vgpu_index", "ORIONX_VGPU_INDEX", 0))
    count = max(1, _token_vgpu_count(token) - first)
    return [_Device(endpoint, token, first + i) for i in range(count)]


def _vm_devices():
    """One device per vGPU of this VM, as its agent counts them; [] when
    this is not a VM with an OrionX link."""
    failures = []
    for endpoint in endpoints.vm_endpoints():
        try:
            probe = vm_devices.connect_link(endpoint)
        except (OSError, ConnectionClosed) as exc:
            failures.append("%s: %s" % (endpoint, exc))
            continue
        count = probe.vgpu_count
        probe.close()
        return [_Device([endpoint], "", index) for index in range(count)]
    if failures:
        raise CudaError(CUresult.CUDA_ERROR_NO_DEVICE,
                        "this VM's link to its host's OrionX agent does not serve it (%s): "
                        "attach a vGPU on the host (orionx vgpu attach DOMAIN ...) and check "
                        "that orionx-agent runs there" % "; ".join(failures))
    return []


def initialise():
    """cuInit: learn the devices. With an endpoint, device 0 is connected at
    once (so cuInit fails when the server is unreachable); an acquire-mode
    allocation is bound only when a context is created."""
    global _devices
    with _lock:
        if _devices is None:
            _devices = _discover_devices()
    if _allocation is None:
        connection(0)


def initialised():
    return _devices is not None


def device_count():
    if _devices is None:
        raise CudaError(CUresult.CUDA_ERROR_NOT_INITIALIZED, "call cuInit(0) first")
    return len(_devices)


def _open(device):
    if _allocation is not None:
        if device.connection is not None:
            # The old session is gone (and maybe its binding with it): bind
            # again and take fresh tokens rather than reuse stale ones.
            _allocation.forget_session()
        vgpu = _allocation.session()[_devices.index(device)]
        # In the controller's order, not fastest first: a direct remote
        # endpoint comes before the local relay it falls back to.
        device.endpoint = [parse_endpoint(text) for text in vgpu["endpoints"]]
        device.token, device.vgpu_index = vgpu["token"], 0
    return Connection(device.endpoint, device.token, vgpu_index=device.vgpu_index,
                      transport=_setting("transport", "ORIONX_TRANSPORT", "auto"),
                      tls_ca_file=_setting("tls_ca_file", "ORIONX_TLS_CA_FILE"))


def connection(ordinal=None):
    """The connection of device ``ordinal`` (default: the current one),
    opened on first use; CudaError if impossible."""
    if _devices is None:
        initialise()
    ordinal = current_device() if ordinal is None else ordinal
    if not 0 <= ordinal < len(_devices):
        raise CudaError(CUresult.CUDA_ERROR_INVALID_DEVICE,
                        "device %d does not exist: this process has %d OrionX device(s)"
                        % (ordinal, len(_devices)))
    device = _devices[ordinal]
    with _lock:
        if device.connection is None or device.connection.ended is not None:
            device.connection = _open(device)
        return device.connection


def current_device():
    """The calling thread's current device (its context), 0 by default."""
    return getattr(_current, "device", 0)


def set_current_device(ordinal):
    _current.device = ordinal


def current():
    """The current device's connection, or None before cuInit."""
    if _devices is None:
        return None
    return connection()


def reset():
    """Close every connection and forget configure()'s settings (tests use it)."""
    global _devices, _allocation
    with _lock:
        for device in _devices or ():
            if device.connection is not None:
                device.connection.close()
        if _allocation is not None:
            _allocation.release()
        _devices = None
        _allocation = None
        _settings.clear()
        _current.__dict__.clear()
