"""MODULE_GET_GLOBAL on the cuda backend, over the stand-in driver of
fake_cuda_driver.py: the driver's pointer to a module's variable is
answered, copies reach it while its module is loaded, and not after."""

import ctypes
import os

import pytest

from guest_runtime.client import Connection
from guest_runtime.curesult import CudaError, CUresult
from orionx_agent.server import cuda_backend
from orionx_agent.server.server import GpuServer
from tests.dataplane import fake_cuda_driver
from tests.dataplane.conftest import SECRET, make_token


@pytest.fixture
def variable_server(monkeypatch, socket_dir):
    """A cuda-backend server whose modules each have one 8-byte variable."""
    calls = []
    driver, nvrtc, _ = fake_cuda_driver.make_modules(calls)
    variable = ctypes.create_string_buffer(8)

    def cuModuleGetGlobal(module, name):
        if name != b"table":
            return fake_cuda_driver.CUresult.CUDA_ERROR_INVALID_VALUE, 0, 0
        return fake_cuda_driver.OK, ctypes.addressof(variable), 8
    driver.cuModuleGetGlobal = cuModuleGetGlobal
    driver.cuModuleUnload = lambda module: (fake_cuda_driver.OK,)
    fake_cuda_driver.install(monkeypatch, driver, nvrtc)
    srv = GpuServer(cuda_backend.CudaGpu(0), SECRET,
                    unix_socket_path=os.path.join(socket_dir, "cuda.sock")).start()
    yield srv, variable
    srv.stop()
    srv.backend.close()


def test_copies_reach_a_module_variable_while_it_is_loaded(variable_server):
    srv, variable = variable_server
    connection = Connection(srv.endpoints[0], make_token(memory_mb=8))
    try:
        (module,) = connection.module_load_data(buffer=b".version 8.0\n.target sm_80\n\0")
        dptr, nbytes = connection.module_get_global(module, buffer=b"table")
        assert (dptr, nbytes) == (ctypes.addressof(variable), 8)
        connection.memcpy_htod(dptr, buffer=b"12345678")
        assert variable.raw == b"12345678"
        assert connection.memcpy_dtoh(dptr + 4, 4, 0) == (b"5678",)
        with pytest.raises(CudaError) as caught:
            connection.memcpy_dtoh(dptr, 9, 0)  # past the variable
        assert caught.value.code == CUresult.CUDA_ERROR_INVALID_VALUE
        with pytest.raises(CudaError):
            connection.module_get_global(module, buffer=b"other")
        connection.module_unload(module)
        with pytest.raises(CudaError) as caught:
            connection.memcpy_dtoh(dptr, 4, 0)
        assert caught.value.code == CUresult.CUDA_ERROR_INVALID_VALUE
    finally:
        connection.close()
