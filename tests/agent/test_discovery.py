"""GPU discovery: NVML where it answers, else [agent] sim_gpus, else none."""

import sys
import types

import pytest

from orionx_agent.agent import discovery


def test_sim_gpus_parse_and_shape():
    assert discovery.parse_sim_gpus("") == (0, 0)
    assert discovery.parse_sim_gpus(" 2x16384 ") == (2, 16384)
    for bad in ("2", "x16", "2x8", "101x1024", "twox1024"):
        with pytest.raises(ValueError, match="COUNTxMEMORY_MB"):
            discovery.parse_sim_gpus(bad)
    gpus = discovery.sim_gpus("host-a", "2x1024")
    assert [g["index"] for g in gpus] == [0, 1]
    assert all(g["memory_mb"] == 1024 and g["backend"] == "sim" for g in gpus)
    # The uuid is the one the GPU server derives from its index.
    assert all(g["uuid"] == "GPU-sim-%08d" % g["server_index"] for g in gpus)


def test_sim_uuids_differ_between_hosts():
    a = {g["uuid"] for g in discovery.sim_gpus("host-a", "4x64")}
    b = {g["uuid"] for g in discovery.sim_gpus("host-b", "4x64")}
    assert len(a) == 4 and not a & b


def test_gpu_less_host_without_nvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    assert discovery.discover("host-x", "") == []
    assert len(discovery.discover("host-x", "1x64")) == 1


def _fake_pynvml(count):
    class NVMLError(Exception):
        pass

    def handle(index):
        return index

    fake = types.SimpleNamespace(
        NVMLError=NVMLError, NVML_TEMPERATURE_GPU=0,
        nvmlInit=lambda: None, nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: count, nvmlDeviceGetHandleByIndex=handle,
        nvmlDeviceGetUUID=lambda h: b"GPU-real-%d" % h,
        nvmlDeviceGetName=lambda h: "NVIDIA H200",
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(total=143771 << 20),
        nvmlDeviceGetPciInfo=lambda h: types.SimpleNamespace(busId=b"0000:3B:00.0"),
        nvmlDeviceGetTemperature=lambda h, sensor: 40)
    return fake


def test_nvml_wins_over_sim_gpus(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(2))
    gpus = discovery.discover("host-x", "4x64")
    assert [g["uuid"] for g in gpus] == ["GPU-real-0", "GPU-real-1"]
    assert gpus[0]["model"] == "NVIDIA H200" and gpus[0]["memory_mb"] == 143771
    assert gpus[0]["pci_address"] == "0000:3b:00.0" and gpus[0]["backend"] == "cuda"
    assert discovery.registration_view(gpus[0]) == {
        "uuid": "GPU-real-0", "index": 0, "model": "NVIDIA H200",
        "pci_address": "0000:3b:00.0", "memory_mb": 143771}


def test_nvml_without_a_driver_falls_back(monkeypatch):
    fake = _fake_pynvml(1)

    def no_driver():
        raise fake.NVMLError("Driver Not Loaded")
    fake.nvmlInit = no_driver
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert [g["backend"] for g in discovery.discover("host-x", "1x64")] == ["sim"]
