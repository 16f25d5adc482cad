"""orionx-run's arguments and the environment it gives CMD, without a pool."""

import pytest

from guest_runtime import run


def test_compute_and_memory_go_together(capsys):
    with pytest.raises(SystemExit):
        run.main(["--compute-pct", "25", "--controller", "http://x", "--", "true"])
    assert "--compute-pct and --memory-mb go together" in capsys.readouterr().err


def test_controller_is_needed(capsys, monkeypatch):
    monkeypatch.delenv("ORIONX_CONTROLLER", raising=False)
    with pytest.raises(SystemExit):
        run.main(["--compute-pct", "25", "--memory-mb", "4096", "--", "true"])
    assert "--controller URL" in capsys.readouterr().err


@pytest.fixture
def library(tmp_path, monkeypatch):
    """A directory orionx-run takes for the library's (nothing loads it here)."""
    (tmp_path / "libcuda.so.1").write_bytes(b"")
    monkeypatch.setenv("ORIONX_LIBCUDA_DIR", str(tmp_path))
    return tmp_path


def test_unreachable_controller_is_a_clear_error(capsys, library):
    status = run.main(["--compute-pct", "25", "--memory-mb", "64", "--controller",
                       "http://127.0.0.1:9", "--", "true"])
    assert status == 2
    assert "unreachable" in capsys.readouterr().err


def test_allocation_body():
    parser = run._parser()
    args = parser.parse_args(["--compute-pct", "25", "--memory-mb", "4096", "--count", "2",
                              "--priority", "70", "--can-preempt", "--", "x"])
    body = run._allocation_body(args, "host-a")
    assert body["vgpus"] == [{"compute_pct": 25, "memory_mb": 4096}] * 2
    assert (body["mode"], body["host"], body["priority"], body["can_preempt"]) == (
        "acquire", "host-a", 70, True)
    assert "preemptible" not in body


def test_the_old_flags_are_hidden_aliases(capsys):
    parser = run._parser()
    usage = parser.format_help()
    assert "--compute-pct" in usage and "--memory-mb" in usage
    assert "--compute " not in usage and "--memory " not in usage
    args = parser.parse_args(["--compute", "20", "--memory", "256", "--", "x"])
    assert run._allocation_body(args, "host-a")["vgpus"] == [
        {"compute_pct": 20, "memory_mb": 256}]


def test_acquire_mode_gives_the_program_only_the_broker(library):
    base = {"ORIONX_ENDPOINT": "unix:/old", "ORIONX_TOKEN": "old", "ORIONX_VGPU_INDEX": "1",
            "ORIONX_CONTROLLER": "http://c", "ORIONX_ALLOCATION": "a", "PATH": "/bin",
            "LD_LIBRARY_PATH": "/opt/lib:%s" % library}
    env = run.build_environment(base, str(library), acquire_socket="/run/x/acquire.sock",
                                transport="tcp")
    assert {k: v for k, v in env.items() if k.startswith("ORIONX_")} == {
        "ORIONX_ACQUIRE_SOCKET": "/run/x/acquire.sock", "ORIONX_TRANSPORT": "tcp"}
    assert env["LD_LIBRARY_PATH"] == "%s:/opt/lib" % library  # first, once
    assert "LD_PRELOAD" not in env and "PYTHONPATH" not in env


def test_endpoint_mode_keeps_the_vgpu_index_and_preloads_on_request(library):
    base = {"ORIONX_VGPU_INDEX": "1", "ORIONX_ACQUIRE_SOCKET": "/stale", "LD_PRELOAD": "a.so"}
    env = run.build_environment(base, str(library), endpoint="unix:/s", token="t",
                                preload=True)
    assert (env["ORIONX_ENDPOINT"], env["ORIONX_TOKEN"], env["ORIONX_VGPU_INDEX"]) == (
        "unix:/s", "t", "1")
    assert "ORIONX_ACQUIRE_SOCKET" not in env
    assert env["LD_PRELOAD"] == "%s a.so" % (library / "libcuda.so.1")


def test_a_library_that_is_not_built_is_named(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("ORIONX_LIBCUDA_DIR", str(tmp_path))
    status = run.main(["--endpoint", "unix:/s", "--token", "t", "--", "true"])
    assert status == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "libcuda.so.1") in err and "make libcuda" in err
