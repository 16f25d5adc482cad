"""The library's other transports, against live sim GPU servers: TLS (the
server's certificate and host name verified against ORIONX_TLS_CA_FILE),
and a KVM guest's link to its host's agent (guest_runtime/vm_link.py's
format) over a virtio-serial port with an ivshmem region for bulk data, and
over vsock where the kernel has vsock loopback. The port and the region are
stand-ins, as in tests/vm: a unix socket relayed to the agent's side of the
port, and a file the agent maps as the VM's shared memory, listed in a
stand-in PCI sysfs tree as an ivshmem device."""

import os
import select
import socket
import subprocess
import threading

import numpy as np
import pytest

from orionx_agent.agent.vm_channels import UnknownVm, VmChannels
from tests.dataplane.conftest import make_token, tls_server  # noqa: F401 - fixture
from tests.libcuda.conftest import client_environment, compile_program
from tests.libcuda.test_c_program import PROGRAM, _run
from tests.libcuda.test_session_end import _wait_for

REGION_BYTES = 4 << 20
COPY_BYTES = 1 << 20

COPY = r"""
#include <orionx/cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    int count = 0;
    CUcontext context;
    CUdeviceptr dptr;
    size_t bytes = %d;
    unsigned char *in = malloc(bytes), *out = malloc(bytes);
    for (size_t i = 0; i < bytes; i++)
        in[i] = (unsigned char)(i * 7 + 3);
    CUresult status = cuInit(0);
    if (status == CUDA_SUCCESS)
        status = cuDeviceGetCount(&count);
    if (status == CUDA_SUCCESS)
        status = cuCtxCreate(&context, 0, 0);
    if (status == CUDA_SUCCESS)
        status = cuMemAlloc(&dptr, bytes);
    if (status == CUDA_SUCCESS)
        status = cuMemcpyHtoD(dptr, in, bytes);
    if (status == CUDA_SUCCESS)
        status = cuMemcpyDtoH(out, dptr, bytes);
    printf("%%d %%d %%d\n", (int)status, count,
           status == CUDA_SUCCESS && memcmp(in, out, bytes) == 0);
    free(in);
    free(out);
    return 0;
}
""" % COPY_BYTES


@pytest.fixture
def copy_program(libcuda_asan_dir, tmp_path):
    source = tmp_path / "copy.c"
    source.write_text(COPY)
    binary = compile_program(source, tmp_path, libcuda_asan_dir, sanitize=True)

    def run(env):
        env = dict(env, ASAN_OPTIONS="detect_leaks=1", UBSAN_OPTIONS="halt_on_error=1")
        result = subprocess.run([str(binary)], env=env, capture_output=True, text=True,
                                timeout=60)
        assert "runtime error" not in result.stderr and "Sanitizer" not in result.stderr, \
            result.stderr
        return result.stdout.split(), result.stderr
    return run


# -- TLS ---------------------------------------------------------------------------


def _tls_env(srv, library_dir, ca_file):
    env = client_environment(srv, library_dir, "tls")
    env["ORIONX_ENDPOINT"] = srv.endpoints[1]
    env["ORIONX_TLS_CA_FILE"] = ca_file
    return env


def test_tls_driver_sequence_under_sanitizers(tls_server, tls_files,  # noqa: F811
                                              libcuda_asan_dir, tmp_path):
    binary = compile_program(PROGRAM, tmp_path, libcuda_asan_dir, sanitize=True)
    env = _tls_env(tls_server, libcuda_asan_dir, tls_files[0])
    env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
    result = _run(binary, env)
    assert "AddressSanitizer" not in result.stderr and "runtime error" not in result.stderr


def test_tls_bulk_copies(tls_server, tls_files, libcuda_asan_dir, copy_program):  # noqa: F811
    words, stderr = copy_program(_tls_env(tls_server, libcuda_asan_dir, tls_files[0]))
    assert words == ["0", "1", "1"], stderr


def test_tls_refuses_an_untrusted_server(tls_server, libcuda_asan_dir, copy_program,  # noqa: F811
                                         tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    key, cert = other / "key.pem", other / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True,
                   timeout=60)
    words, stderr = copy_program(_tls_env(tls_server, libcuda_asan_dir, str(cert)))
    assert words[0] == "100"
    assert "certificate is not trusted for 127.0.0.1" in stderr


def test_tls_checks_the_host_name(tls_server, tls_files, libcuda_asan_dir,  # noqa: F811
                                  copy_program):
    # The certificate is for IP 127.0.0.1, not the name localhost.
    env = _tls_env(tls_server, libcuda_asan_dir, tls_files[0])
    env["ORIONX_ENDPOINT"] = env["ORIONX_ENDPOINT"].replace("127.0.0.1", "localhost")
    words, stderr = copy_program(env)
    assert words[0] == "100" and "not trusted for localhost" in stderr, stderr


def test_tls_missing_ca_file_is_named(tls_server, libcuda_asan_dir, copy_program):  # noqa: F811
    words, stderr = copy_program(_tls_env(tls_server, libcuda_asan_dir, "/nonexistent/ca.pem"))
    assert words[0] == "100"
    assert "ORIONX_TLS_CA_FILE=/nonexistent/ca.pem" in stderr


def test_tls_without_libssl_is_named(tls_server, tls_files, libcuda_asan_dir,  # noqa: F811
                                     copy_program, tmp_path):
    # A broken libssl.so.3 found first stands in for a system without one.
    fake = tmp_path / "nossl"
    fake.mkdir()
    (fake / "libssl.so.3").write_bytes(b"not a library")
    env = _tls_env(tls_server, libcuda_asan_dir, tls_files[0])
    env["LD_LIBRARY_PATH"] = "%s:%s" % (libcuda_asan_dir, fake)
    words, stderr = copy_program(env)
    assert words[0] == "100"
    assert "TLS needs the system's OpenSSL 3 (libssl.so.3), which cannot be loaded" in stderr
    assert "apt-get install libssl3" in stderr


# -- a KVM guest's link -------------------------------------------------------------


class FakeVm:
    def __init__(self, shmem_path, vgpu_count=1):
        self.name, self.uuid = "guest-1", "dom-uuid-1"
        self.vgpu_count = vgpu_count
        self.shmem_path = shmem_path


class Directory:
    """Stands in for the agent's libvirt-backed directory of domains."""

    def __init__(self, vm, cid=None, known=True):
        self.vm, self.cid, self.known = vm, cid, known

    def by_cid(self, cid):
        if cid != self.cid:
            raise UnknownVm("no domain has vsock CID %d" % cid)
        return self.vm

    def by_uuid(self, domain_uuid):
        if not self.known:
            raise UnknownVm("domain %s has no OrionX vGPU: run orionx vgpu attach on its host"
                            % domain_uuid)
        return self.vm

    def tokens(self, vm):
        return [make_token(vgpu_id="vm-vgpu-%d" % i, allocation_id="alloc-vm")
                for i in range(vm.vgpu_count)]


class SerialPort:
    """A domain's virtio-serial port: QEMU's socket, which the agent connects
    to, and the guest's end, here a unix socket each guest process connects
    to in turn (the port outlives them, as a real one does)."""

    def __init__(self, directory, server, workdir):
        self.qemu_path = os.path.join(workdir, "qemu-serial.sock")
        self.guest_path = os.path.join(workdir, "guest-port")
        qemu = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        qemu.bind(self.qemu_path)
        qemu.listen(1)
        self._guest = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._guest.bind(self.guest_path)
        self._guest.listen(1)
        self.channels = VmChannels(directory, server.endpoints[0][5:]).start()
        self.channels.attach_serial("dom-uuid-1", self.qemu_path)
        self._agent, _ = qemu.accept()
        qemu.close()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self):
        while True:
            try:
                guest, _ = self._guest.accept()
            except OSError:
                return
            with guest:
                while True:
                    ready, _, _ = select.select([guest, self._agent], [], [])
                    if guest in ready:
                        data = guest.recv(1 << 16)
                        if not data:
                            break  # this guest process is done; the port stays
                        self._agent.sendall(data)
                    if self._agent in ready:
                        data = self._agent.recv(1 << 16)
                        if not data:
                            return
                        guest.sendall(data)

    def close(self):
        self.channels.stop()
        self._guest.close()
        self._agent.close()


@pytest.fixture
def region(socket_dir):
    """(the host's shared-memory file, the guest's stand-in PCI sysfs root)."""
    path = os.path.join(socket_dir, "orionx-dom-uuid-1")
    with open(path, "wb") as out:
        out.truncate(REGION_BYTES)
    sysfs = os.path.join(socket_dir, "pci")
    for name, device in (("0000:00:02.0", "0x1000"), ("0000:00:05.0", "0x1110")):
        os.makedirs(os.path.join(sysfs, name))
        with open(os.path.join(sysfs, name, "vendor"), "w") as out:
            out.write("0x1af4\n")
        with open(os.path.join(sysfs, name, "device"), "w") as out:
            out.write(device + "\n")
    # The guest's BAR 2 and the host's file are the same bytes.
    os.symlink(path, os.path.join(sysfs, "0000:00:05.0", "resource2"))
    return path, sysfs


def _vm_env(srv, library_dir, sysfs=None):
    env = client_environment(srv, library_dir)
    for name in ("ORIONX_ENDPOINT", "ORIONX_TOKEN", "ORIONX_TRANSPORT"):
        del env[name]
    env["ORIONX_PCI_SYSFS_ROOT"] = sysfs or "/nonexistent"
    return env


def _region_words(path):
    with open(path, "rb") as raw:
        return np.frombuffer(raw.read(24), dtype=np.uint64)


def test_serial_link_with_region_found_with_no_configuration(server, region, socket_dir,
                                                             libcuda_asan_dir, copy_program):
    region_path, sysfs = region
    port = SerialPort(Directory(FakeVm(region_path, vgpu_count=2)), server, socket_dir)
    try:
        env = _vm_env(server, libcuda_asan_dir, sysfs)
        env["ORIONX_VM_SERIAL_PORT"] = port.guest_path  # where the port is found
        words, stderr = copy_program(env)
        assert words == ["0", "2", "1"], stderr
        # The copies (1 MB each way) went through the region, not the port.
        words = _region_words(region_path)
        assert words[1] >= COPY_BYTES and words[2] >= COPY_BYTES
        assert _wait_for(lambda: port.channels.sessions_relayed == 1)
        # The next program on the same port: sessions follow each other.
        env["ORIONX_TRANSPORT"] = "serial"
        words, stderr = copy_program(env)
        assert words == ["0", "2", "1"], stderr
        assert _wait_for(lambda: port.channels.sessions_relayed == 2)
        assert _wait_for(lambda: server.sessions() == [])
    finally:
        port.close()


def test_a_region_another_process_holds_is_left_alone(server, region, socket_dir,
                                                     libcuda_asan_dir, copy_program):
    import fcntl

    region_path, sysfs = region
    port = SerialPort(Directory(FakeVm(region_path)), server, socket_dir)
    holder = os.open(region_path, os.O_RDWR)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)  # another program of the VM has it
        env = _vm_env(server, libcuda_asan_dir, sysfs)
        env["ORIONX_ENDPOINT"] = "serial:" + port.guest_path
        words, stderr = copy_program(env)
        assert words == ["0", "1", "1"], stderr
        assert list(_region_words(region_path)) == [0, 0, 0]  # all went inline
    finally:
        os.close(holder)
        port.close()


def test_serial_endpoint_inline_without_region(server, socket_dir, libcuda_asan_dir,
                                               copy_program):
    port = SerialPort(Directory(FakeVm(None)), server, socket_dir)
    try:
        env = _vm_env(server, libcuda_asan_dir)
        env["ORIONX_ENDPOINT"] = "serial:" + port.guest_path  # no token: the agent has it
        words, stderr = copy_program(env)
        assert words == ["0", "1", "1"], stderr
    finally:
        port.close()


def test_driver_sequence_over_the_serial_link(server, region, socket_dir, libcuda_asan_dir,
                                              tmp_path):
    region_path, sysfs = region
    port = SerialPort(Directory(FakeVm(region_path)), server, socket_dir)
    try:
        binary = compile_program(PROGRAM, tmp_path, libcuda_asan_dir, sanitize=True)
        env = _vm_env(server, libcuda_asan_dir, sysfs)
        env["ORIONX_ENDPOINT"] = "serial:" + port.guest_path
        env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
        _run(binary, env)
    finally:
        port.close()


FORKS = r"""
#define _POSIX_C_SOURCE 200809L
#include <orionx/cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    CUcontext context;
    CUdeviceptr dptr;
    unsigned value = 0x12345678, back = 0;
    if (cuInit(0) || cuCtxCreate(&context, 0, 0) || cuMemAlloc(&dptr, 4))
        return 1;
    pid_t child = fork();
    if (child == 0)
        exit(0);  /* runs the library's exit work in the child */
    waitpid(child, NULL, 0);
    CUresult status = cuMemcpyHtoD(dptr, &value, 4);
    if (status == CUDA_SUCCESS)
        status = cuMemcpyDtoH(&back, dptr, 4);
    printf("%d %d\n", (int)status, back == value);
    return 0;
}
"""


def test_a_forked_child_leaves_the_session_alone(server, socket_dir, libcuda_asan_dir,
                                                 tmp_path):
    """A child forked after the session opened shares its link: its exit
    must not end the parent's session."""
    source = tmp_path / "forks.c"
    source.write_text(FORKS)
    binary = compile_program(source, tmp_path, libcuda_asan_dir, sanitize=True)
    port = SerialPort(Directory(FakeVm(None)), server, socket_dir)
    try:
        env = _vm_env(server, libcuda_asan_dir)
        env["ORIONX_ENDPOINT"] = "serial:" + port.guest_path
        result = subprocess.run([str(binary)], env=env, capture_output=True, text=True,
                                timeout=30)
        assert result.stdout.split() == ["0", "1"], result.stderr
    finally:
        port.close()


def test_unknown_vm_is_told_what_to_do(server, socket_dir, libcuda_asan_dir, copy_program):
    port = SerialPort(Directory(FakeVm(None), known=False), server, socket_dir)
    try:
        env = _vm_env(server, libcuda_asan_dir)
        env["ORIONX_ENDPOINT"] = "serial:" + port.guest_path
        words, stderr = copy_program(env)
        assert words[0] == "100"
        assert "does not serve it" in stderr and "orionx vgpu attach" in stderr
        # Refused, the port serves the next program once the VM has a vGPU.
        port.channels.directory.known = True
        words, stderr = copy_program(env)
        assert words == ["0", "1", "1"], stderr
    finally:
        port.close()


def _vsock_loopback():
    from tests.vm.test_vm_channels import _vsock_loopback_port
    return _vsock_loopback_port()[1]


def test_vsock_link(server, libcuda_asan_dir, copy_program):
    why = _vsock_loopback()
    if why:
        pytest.skip(why)
    vmaddr_cid_local = 1
    channels = VmChannels(Directory(FakeVm(None, vgpu_count=2), cid=vmaddr_cid_local),
                          server.endpoints[0][5:], vsock_port=socket.VMADDR_PORT_ANY).start()
    try:
        env = _vm_env(server, libcuda_asan_dir)
        env["ORIONX_ENDPOINT"] = "vsock:%d:%d" % (vmaddr_cid_local, channels.vsock_port)
        words, stderr = copy_program(env)
        assert words == ["0", "2", "1"], stderr
    finally:
        channels.stop()
