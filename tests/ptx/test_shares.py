"""PTX kernels are device time like the built-in ones: two PTX workloads at
25 % and 75 % of one simulated GPU get those shares of its device time."""

import pytest

from orionx_agent.server.control import ControlClient
from tests.ptx import compilers
from tests.ptx.ptx_load import BUSY_SOURCE, PtxLoad
from tests.qos.conftest import make_token
from tests.qos.workload import ServerProcess, measure

MEASURE_S = 3.0
TOLERANCE = 0.05


@pytest.fixture
def busy_ptx(tmp_path):
    path = tmp_path / "busy.ptx"
    path.write_text(compilers.nvrtc(BUSY_SOURCE))
    return str(path)


@pytest.mark.parametrize("mode", ["elastic", "hard"])
def test_25_75_ptx_workloads_get_their_shares(socket_dir, busy_ptx, mode):
    server = ServerProcess(socket_dir, mode)
    control = ControlClient(server.control_path)
    loads = []
    try:
        loads = [PtxLoad(server.endpoints[0],
                         make_token("alloc-%d" % i, "vgpu-%d" % i, pct, 64), busy_ptx)
                 for i, pct in enumerate((25, 75))]
        for load in loads:
            load.start()
        used, _ = measure(control, loads, MEASURE_S)
    finally:
        for load in loads:
            load.stop()
        control.close()
        server.stop()
    for load in loads:
        assert load.error is None, load.error
    total = sum(used)
    shares = [u / total for u in used]
    assert abs(shares[0] - 0.25) <= TOLERANCE and abs(shares[1] - 0.75) <= TOLERANCE, shares
