"""A libvirtd (and the virtlogd it writes consoles through) started by the
test, listening on a socket in a temporary directory, stopped by PID.

A daemon run as root keeps QEMU's state in the system's directories, so
this refuses to start while another libvirtd or virtlogd serves them.
"""

import os
import shutil
import signal
import subprocess
import time

import pytest

LIBVIRTD = "/usr/sbin/libvirtd"
VIRTLOGD = "/usr/sbin/virtlogd"
SYSTEM_VIRTLOGD_SOCKET = "/run/libvirt/virtlogd-sock"
START_TIMEOUT_S = 30


def _wait_for_path(path, process, what):
    deadline = time.monotonic() + START_TIMEOUT_S
    while not os.path.exists(path):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("%s did not come up within %d s (exit status %s)"
                               % (what, START_TIMEOUT_S, process.poll()))
        time.sleep(0.1)


class PrivateLibvirtd:
    def __init__(self, work_dir):
        self.work_dir = work_dir
        self.socket_path = os.path.join(work_dir, "libvirt-sock")
        self.uri = "qemu:///system?socket=%s" % self.socket_path
        self.processes = []

    def start(self):
        if os.geteuid() != 0:
            pytest.skip("the end-to-end VM test runs libvirtd as root")
        for binary in (LIBVIRTD, VIRTLOGD, shutil.which("qemu-system-x86_64")):
            if not binary or not os.path.exists(binary):
                pytest.skip("libvirtd, virtlogd or qemu-system-x86_64 is missing: "
                            "tools/install-debian-packages.sh test installs them")
        if os.path.exists(SYSTEM_VIRTLOGD_SOCKET):
            pytest.skip("a virtlogd already serves %s: this test starts its own daemons "
                        "only on a host without them" % SYSTEM_VIRTLOGD_SOCKET)
        self._start_virtlogd()
        self._start_libvirtd()
        return self

    def _start_virtlogd(self):
        config = os.path.join(self.work_dir, "virtlogd.conf")
        with open(config, "w") as out:
            out.write("log_outputs = \"3:file:%s\"\n" % os.path.join(self.work_dir,
                                                                  "virtlogd.log"))
        process = self._spawn([VIRTLOGD, "-f", config, "-p",
                               os.path.join(self.work_dir, "virtlogd.pid")])
        _wait_for_path(SYSTEM_VIRTLOGD_SOCKET, process, "virtlogd")

    def _start_libvirtd(self):
        config = os.path.join(self.work_dir, "libvirtd.conf")
        with open(config, "w") as out:
            out.write("\n".join([
                'unix_sock_dir = "%s"' % self.work_dir,
                'unix_sock_rw_perms = "0700"',
                'auth_unix_rw = "none"',
                'auth_unix_ro = "none"',
                'log_outputs = "3:file:%s"' % os.path.join(self.work_dir, "libvirtd.log"),
                ""]))
        process = self._spawn([LIBVIRTD, "-f", config, "-p",
                               os.path.join(self.work_dir, "libvirtd.pid")])
        _wait_for_path(self.socket_path, process, "libvirtd")

    def _spawn(self, argv):
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        self.processes.append(process)
        return process

    def log(self):
        try:
            with open(os.path.join(self.work_dir, "libvirtd.log")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
        self.processes = []
