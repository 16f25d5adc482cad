"""Gateway refusals reach the guest as HELLO errors that say what to do."""

import os
import shutil
import tempfile

import pytest

from guest_runtime.client import Connection
from guest_runtime.curesult import CudaError, CUresult
from orionx_agent.agent.gateway import Gateway
from orionx_agent.agent.locator import GpuNotFound
from orionx_agent.dev_tokens import development_token
from orionx_common.session_token import VGpuClaim

SECRET = "gateway-test-secret"


class NoGpusHere:
    hostname = "host-x"

    def local_server(self, gpu_uuid):
        return None

    def only_local_server(self):
        return None

    def remote_node(self, gpu_uuid):
        if gpu_uuid == "GPU-down":
            return {"hostname": "host-y", "state": "down", "endpoints": {}}
        raise GpuNotFound("cannot find the host of GPU %s: not registered" % gpu_uuid)

    def forget(self, gpu_uuid):
        pass


@pytest.fixture
def gateway():
    directory = tempfile.mkdtemp(prefix="oxgw-", dir="/tmp")
    gw = Gateway(SECRET, NoGpusHere(), unix_socket_path=os.path.join(directory, "gw.sock"),
                 tcp_address=("127.0.0.1", 0)).start()
    yield gw
    gw.stop()
    shutil.rmtree(directory, ignore_errors=True)


def _token(*gpus, secret=SECRET):
    return development_token(secret, allocation_id="alloc-1", vgpus=[
        VGpuClaim("v%d" % i, 10, 64, gpu) for i, gpu in enumerate(gpus)])


@pytest.mark.parametrize("token,code,words", [
    (_token("GPU-a", secret="other"), CUresult.CUDA_ERROR_NOT_PERMITTED, "signature"),
    (_token("GPU-a", "GPU-b"), CUresult.CUDA_ERROR_NOT_PERMITTED, "one token per vGPU"),
    (_token("GPU-nowhere"), CUresult.CUDA_ERROR_NO_DEVICE, "not registered"),
    (_token("GPU-down"), CUresult.CUDA_ERROR_DEVICE_UNAVAILABLE, "which is down"),
])
def test_refusals_over_unix(gateway, token, code, words):
    with pytest.raises(CudaError) as raised:
        Connection(gateway.listen_endpoints()[0], token, timeout_s=5)
    assert raised.value.code == code and words in str(raised.value)


def test_tcp_connections_are_not_relayed(gateway):
    with pytest.raises(CudaError, match="relays only for its own guests"):
        Connection(gateway.listen_endpoints()[1], _token("GPU-elsewhere"), timeout_s=5)
