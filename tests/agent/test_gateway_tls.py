"""Gateways that speak TLS, between agent processes over a real RabbitMQ:
a guest on a GPU-less host reaches a remote GPU through its agent's relay
(encrypted host to host) or directly, a plain TCP client and an untrusted
certificate are refused, and a bad configuration stops the agent with a
message naming the option."""

import socket
import subprocess
import sys

import pytest

from guest_runtime import protocol
from orionx_nova.objects import gpus, nodes
from tests.agent.conftest import AgentProcess, orionx_run, wait_for


@pytest.fixture
def tls(tls_files):
    cert, key = tls_files
    return {"cert": cert, "key": key, "ca": cert}


def _gateway_tcp(agent):
    (tcp,) = [e for e in nodes.get(agent.hostname)["endpoints"]["gateway"]
              if not e.startswith("unix:")]
    return tcp


def _no_capacity_held():
    return all(g["allocated_compute_pct"] == 0 and g["allocated_memory_mb"] == 0
               for g in gpus.list())


def test_guest_relayed_to_a_tls_gateway(pool, tls):
    gpu_host = pool.agent("gpu", sim_gpus="1x1024", tls=tls)
    guest_host = pool.agent("guest", tls=tls)
    pool.wait_up(gpu_host)
    pool.wait_up(guest_host)
    assert _gateway_tcp(gpu_host).startswith("tls:127.0.0.1:")
    result = orionx_run(pool, guest_host.hostname, "once")
    assert result.returncode == 0, result.stdout + result.stderr + gpu_host.log()[-3000:]
    assert result.stdout.strip() == "ok"
    wait_for(lambda: "(TLS) -> GPU server of" in gpu_host.log(), 10,
             "the GPU host ending TLS and relaying to its GPU server")
    wait_for(lambda: "Relay unix:" in guest_host.log(), 10, "the guest's agent relaying")
    wait_for(_no_capacity_held, 10, "capacity released")


def test_direct_remote_guest_speaks_tls_itself(pool, tls):
    gpu_host = pool.agent("gpu", sim_gpus="1x1024", tls=tls)
    guest_host = pool.agent("guest", direct_remote=True)
    pool.wait_up(gpu_host)
    pool.wait_up(guest_host)
    result = orionx_run(pool, guest_host.hostname, "once",
                        extra=("--tls-ca-file", tls["ca"]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "ok"
    assert "Relay unix:" not in guest_host.log()
    wait_for(lambda: "(TLS) -> GPU server of" in gpu_host.log(), 10, "TLS ended on the GPU host")


def test_relay_to_an_untrusted_gateway_is_refused_with_the_reason(pool, tls):
    gpu_host = pool.agent("gpu", sim_gpus="1x1024", tls=tls)
    guest_host = pool.agent("guest")  # trusts only the system's CAs
    pool.wait_up(gpu_host)
    pool.wait_up(guest_host)
    result = orionx_run(pool, guest_host.hostname, "once")
    assert result.returncode != 0
    assert "certificate verify failed" in result.stdout + result.stderr, (
        result.stdout + result.stderr)
    wait_for(_no_capacity_held, 10, "capacity released")


def test_plain_tcp_client_is_dropped(pool, tls):
    gpu_host = pool.agent("gpu", sim_gpus="1x1024", tls=tls)
    pool.wait_up(gpu_host)
    _kind, host, port = _gateway_tcp(gpu_host).split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        hello = protocol.pack_header(protocol.OPS_BY_NAME["HELLO"].opcode, 0, 1, 4)
        sock.sendall(hello + b"\0" * 4)
        try:
            answer = sock.recv(1024)
        except ConnectionResetError:
            answer = b""
    # Closed without a word, or with a TLS alert record (content type 21):
    # never served.
    assert answer == b"" or answer[0] == 21, answer
    wait_for(lambda: "TLS handshake failed" in gpu_host.log(), 15, "the plain client dropped")


def test_certificate_without_key_stops_the_agent_naming_the_options(rabbit_url, tls):
    agent = AgentProcess(rabbit_url, "badtls", sim_gpus="1x512",
                         tls={"cert": tls["cert"]})
    try:
        result = subprocess.run(
            [sys.executable, "-m", "orionx_agent.cmd.agent", "--config-file",
             agent.config_file, "--state-dir", agent.state_dir],
            capture_output=True, text=True, timeout=60)
        assert result.returncode == 2
        assert "gateway_tls_cert_file and gateway_tls_key_file go together" in (
            result.stdout + result.stderr)
    finally:
        agent.cleanup()
