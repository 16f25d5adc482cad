"""Fixtures of the C library's tests: the library built from the current
sources (plain and with sanitizers) and live sim GPU servers, the same ones
the data-plane tests use (tests/dataplane/conftest.py)."""

import importlib.util
import os
import pathlib
import shutil
import subprocess

import pytest

from tests.dataplane.conftest import make_token, second_server, server, socket_dir  # noqa: F401 - fixtures

REPO = pathlib.Path(__file__).resolve().parents[2]
LIBCUDA = REPO / "guest_runtime" / "libcuda"
INCLUDE = LIBCUDA / "include"


def _build_module():
    spec = importlib.util.spec_from_file_location("orionx_libcuda_build", LIBCUDA / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _need_compiler():
    if shutil.which(os.environ.get("CC", "cc")) is None:
        pytest.fail("no C compiler: install gcc (tools/install-debian-packages.sh base)")


@pytest.fixture(scope="session")
def libcuda_dir(tmp_path_factory):
    """A directory holding libcuda.so.1 built from the sources of this tree."""
    _need_compiler()
    out = tmp_path_factory.mktemp("libcuda")
    _build_module().build(out)
    return out


@pytest.fixture(scope="session")
def libcuda_asan_dir(tmp_path_factory):
    """The same, built with AddressSanitizer and UndefinedBehaviorSanitizer."""
    _need_compiler()
    out = tmp_path_factory.mktemp("libcuda-asan")
    _build_module().build(out, sanitize=True)
    return out


def compile_program(source, out_dir, library_dir, sanitize=False, libraries=()):
    """Compile the C program SOURCE against the library's header; its path."""
    binary = pathlib.Path(out_dir) / pathlib.Path(source).stem
    command = [os.environ.get("CC", "cc"), "-std=c11", "-Wall", "-Wextra", "-Werror", "-g",
               "-I", str(INCLUDE), "-o", str(binary), str(source),
               "-L", str(library_dir), "-lcuda", *libraries]
    if sanitize:
        command[1:1] = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    subprocess.run(command, check=True)
    return binary


def client_environment(srv, library_dir, transport="auto", memory_mb=64, token=None):
    """Environment of a client process of SRV that loads the library first."""
    env = dict(os.environ)
    env.update({
        "LD_LIBRARY_PATH": str(library_dir),
        "ORIONX_ENDPOINT": ",".join(srv.endpoints),
        "ORIONX_TOKEN": token or make_token(memory_mb=memory_mb),
        "ORIONX_TRANSPORT": transport,
    })
    for name in ("ORIONX_CONTROLLER", "ORIONX_ALLOCATION", "ORIONX_VGPU_INDEX"):
        env.pop(name, None)
    return env
