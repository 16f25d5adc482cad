"""A small guest for the end-to-end test, built from Debian packages: the
cloud kernel (virtio drivers as modules), busybox, and an initramfs with
this host's python3, numpy, NVIDIA's cuda-python (the driver bindings and
cuda-pathfinder) and the pool's libcuda.so.1 on the library path. Its /init loads the virtio
modules, names the serial ports as udev would, runs the guest program and
powers off a minute later; the program's verdict goes to the serial console.
"""

import glob
import gzip
import os
import shutil
import stat
import subprocess

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KERNEL_PACKAGE = "linux-image-cloud-amd64"
BUSYBOX_PACKAGE = "busybox-static"
# Load order matters: each needs the ones before it.
MODULES = ("virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
           "virtio_pci", "virtio_console")
STDLIB_SKIPPED = ("test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3",
                  "pydoc_data", "distutils", "config-3.11-x86_64-linux-gnu")

INIT_SCRIPT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for module in %(modules)s; do insmod /lib/modules/$module.ko; done
mkdir -p /dev/virtio-ports
for tries in 1 2 3 4 5 6 7 8 9 10; do
    for port in /sys/class/virtio-ports/*; do
        [ -f "$port/name" ] || continue
        ln -sf /dev/$(basename $port) /dev/virtio-ports/$(cat $port/name)
    done
    [ -e /dev/virtio-ports/org.orionx.agent.0 ] && break
    sleep 1
done
echo "ORIONX-E2E: guest up, running the program"
LD_LIBRARY_PATH=/opt/orionx/lib PYTHONPATH=/opt/orionx PYTHONDONTWRITEBYTECODE=1 timeout 240 \
    /usr/bin/python3.11 /opt/orionx/e2e_guest.py
echo "ORIONX-E2E: program exited with status $?"
# The test looks at the pool between the program's end and the domain's stop
# (a reserve-mode domain stays bound), then destroys the domain; this wait
# only bounds how long a guest left alone stays up.
sleep 60
poweroff -f
"""


class MissingPackage(Exception):
    pass


def fetch_package(package, cache_dir):
    """The .deb of ``package`` (resolving a meta-package to what it depends
    on), downloaded once into ``cache_dir``."""
    os.makedirs(cache_dir, exist_ok=True)
    found = glob.glob(os.path.join(cache_dir, "*.deb"))
    if package == KERNEL_PACKAGE:
        depends = subprocess.run(["apt-cache", "depends", package], capture_output=True,
                                 text=True).stdout
        names = [line.split()[-1] for line in depends.splitlines()
                 if "Depends: linux-image-" in line]
        if not names:
            raise MissingPackage("apt-cache knows no %s: run apt-get update" % package)
        package = names[0]
    prefix = os.path.join(cache_dir, package + "_")
    ready = [path for path in found if path.startswith(prefix)]
    if ready:
        return ready[0]
    done = subprocess.run(["apt-get", "download", package], cwd=cache_dir,
                          capture_output=True, text=True, timeout=600)
    ready = glob.glob(prefix + "*.deb")
    if not ready:
        raise MissingPackage("apt-get download %s failed: %s" % (package, done.stderr[-500:]))
    return ready[0]


def _extract(deb, into):
    os.makedirs(into, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", deb, into], check=True, timeout=300)
    return into


def _copy_tree(source, target, skipped=()):
    shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True,
                    ignore=lambda folder, names: [n for n in names if n in skipped
                                                  or (folder.endswith("numpy")
                                                      and n in ("tests", "f2py", "typing"))])


def _shared_libraries(binary):
    libraries = []
    for line in subprocess.run(["ldd", binary], capture_output=True, text=True).stdout.split(
            "\n"):
        parts = line.split()
        path = next((p for p in parts if p.startswith("/")), None)
        if path:
            libraries.append(path)
    return libraries


def build(work_dir, cache_dir, guest_program):
    """(kernel path, initramfs path) of a guest running ``guest_program``."""
    kernel_root = _extract(fetch_package(KERNEL_PACKAGE, cache_dir), os.path.join(work_dir,
                                                                                 "kernel"))
    busybox_root = _extract(fetch_package(BUSYBOX_PACKAGE, cache_dir),
                            os.path.join(work_dir, "busybox"))
    root = os.path.join(work_dir, "root")
    for folder in ("bin", "proc", "sys", "dev", "tmp", "lib/modules", "usr/bin", "opt/orionx"):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    shutil.copy(os.path.join(busybox_root, "bin", "busybox"), os.path.join(root, "bin"))
    for module in MODULES:
        path = glob.glob(os.path.join(kernel_root, "lib/modules/*/kernel/**/%s.ko" % module),
                         recursive=True)
        if path:
            shutil.copy(path[0], os.path.join(root, "lib/modules", module + ".ko"))
    _add_python(root)
    shutil.copy(guest_program, os.path.join(root, "opt/orionx/e2e_guest.py"))
    with open(os.path.join(root, "init"), "w") as out:
        out.write(INIT_SCRIPT % {"modules": " ".join(MODULES)})
    os.chmod(os.path.join(root, "init"), 0o755)
    kernel = glob.glob(os.path.join(kernel_root, "boot", "vmlinuz-*"))[0]
    initramfs = os.path.join(work_dir, "initramfs.gz")
    write_initramfs(root, initramfs)
    return kernel, initramfs


def _loaded_library(soname):
    """The path the dynamic linker finds SONAME at, from its cache."""
    for line in subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout.split(
            "\n"):
        parts = line.split()
        if parts and parts[0] == soname and "x86-64" in line:
            return parts[-1]
    raise RuntimeError("the dynamic linker knows no %s" % soname)


def _add_libraries(root, binaries, direct=False):
    """The shared libraries BINARIES need (or, DIRECT, BINARIES themselves)."""
    for binary in binaries:
        for library in [binary] if direct else _shared_libraries(binary):
            if not library.startswith(("/lib", "/usr/lib")):
                continue  # numpy's own, shipped beside it
            target = os.path.join(root, library.lstrip("/"))
            if not os.path.exists(target):
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy(library, target)


def _add_python(root):
    python = "/usr/bin/python3.11"
    shutil.copy(python, os.path.join(root, "usr/bin"))
    _copy_tree("/usr/lib/python3.11", os.path.join(root, "usr/lib/python3.11"),
               skipped=STDLIB_SKIPPED + ("site-packages", "dist-packages"))
    # The interpreter and its extension modules (ctypes needs libffi, ...).
    _add_libraries(root, [python] + glob.glob("/usr/lib/python3.11/lib-dynload/*.so"))
    import numpy
    numpy_dir = os.path.dirname(numpy.__file__)
    for folder in (numpy_dir, numpy_dir + ".libs"):
        if os.path.isdir(folder):
            _copy_tree(folder, os.path.join(root, "opt/orionx", os.path.basename(folder)))
    _add_libraries(root, glob.glob(os.path.join(numpy_dir, "**", "*.so"), recursive=True))
    _add_cuda_python(root)


# What `from cuda.bindings import driver` loads: the guest needs no runtime,
# NVRTC, NVML or cuFile bindings, which would only make the image bigger.
CUDA_BINDINGS_KEPT = ("__init__.py", "_version.py", "_internal", "_fast_enum.py", "utils",
                      "driver", "cydriver")


def _add_cuda_python(root):
    """NVIDIA's driver bindings, cuda-pathfinder, the examples' kernels and
    the pool's libcuda.so.1 (built by the install) under /opt/orionx."""
    import cuda.bindings
    import cuda.pathfinder
    bindings_dir = os.path.dirname(cuda.bindings.__file__)
    target = os.path.join(root, "opt/orionx/cuda")

    def ignored(folder, names):
        trimmed = folder == bindings_dir or os.path.basename(folder) == "_internal"
        return [n for n in names if n == "__pycache__" or n.endswith((".pxd", ".pyx"))
                or (trimmed and not n.startswith(CUDA_BINDINGS_KEPT))]

    shutil.copytree(bindings_dir, os.path.join(target, "bindings"), symlinks=True,
                    ignore=ignored)
    _copy_tree(os.path.dirname(cuda.pathfinder.__file__), os.path.join(target, "pathfinder"),
               skipped=("__pycache__",))
    extensions = glob.glob(os.path.join(target, "bindings", "**", "*.so"), recursive=True)
    _add_libraries(root, extensions)
    # cuda-pathfinder opens libdl.so.2 by name (for dlinfo): nothing links it.
    _add_libraries(root, [_loaded_library("libdl.so.2")], direct=True)
    shutil.copy(os.path.join(REPO_ROOT, "examples", "kernels.py"),
                os.path.join(root, "opt/orionx"))
    library = os.path.join(REPO_ROOT, "guest_runtime", "lib", "libcuda.so.1")
    if not os.path.exists(library):
        raise RuntimeError("%s is not built: run make libcuda" % library)
    os.makedirs(os.path.join(root, "opt/orionx/lib"), exist_ok=True)
    shutil.copy(library, os.path.join(root, "opt/orionx/lib"))


def write_initramfs(root, path):
    """A gzip'd newc cpio archive of ``root`` (no cpio tool needed)."""
    with gzip.open(path, "wb", compresslevel=1) as out:
        inode = 1
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                full = os.path.join(folder, name)
                _cpio_entry(out, os.path.relpath(full, root), os.lstat(full), full, inode)
                inode += 1
        _cpio_entry(out, "TRAILER!!!", None, None, 0)


def _cpio_entry(out, name, info, full, inode):
    data = b""
    mode = 0
    if info is not None:
        mode = info.st_mode
        if stat.S_ISLNK(mode):
            data = os.readlink(full).encode()
        elif stat.S_ISREG(mode):
            with open(full, "rb") as source:
                data = source.read()
    encoded = name.encode() + b"\0"
    header = "070701" + "".join("%08X" % v for v in (
        inode, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0))
    out.write(header.encode() + encoded)
    out.write(b"\0" * (-(110 + len(encoded)) % 4))
    out.write(data)
    out.write(b"\0" * (-len(data) % 4))
