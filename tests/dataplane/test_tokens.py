"""Session tokens: the codec, and a server that refuses bad ones clearly."""

import base64
import hashlib
import hmac
import json
import time

import pytest

from guest_runtime.client import Connection
from guest_runtime.curesult import CudaError, CUresult
from orionx_common.session_token import TokenError, VGpuClaim, mint_token, verify_token
from tests.dataplane.conftest import SECRET, make_token


def test_round_trip():
    token = mint_token("k", "alloc-9", [VGpuClaim("v1", 25, 4096, "GPU-1"),
                                         {"id": "v2", "compute_pct": 75, "memory_mb": 512}],
                       ttl_s=60, now=1000)
    claims = verify_token("k", token, now=1030)
    assert claims.allocation_id == "alloc-9"
    assert claims.expires_at == 1060
    assert claims.vgpus == (VGpuClaim("v1", 25, 4096, "GPU-1"), VGpuClaim("v2", 75, 512))
    assert claims.generation == 0


def test_generation_round_trips():
    token = mint_token("k", "alloc-9", [VGpuClaim("v1", 25, 4096)], now=1000, generation=7)
    assert verify_token("k", token, now=1001).generation == 7


def test_token_without_generation_reads_as_zero():
    """Tokens minted before generations existed stay valid, as generation 0."""
    body = {"aid": "a", "exp": 2000, "vgpus": [{"id": "v", "compute_pct": 10, "memory_mb": 10}]}
    payload = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    signed = "v1." + payload
    sig = base64.urlsafe_b64encode(
        hmac.new(b"k", signed.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
    assert verify_token("k", signed + "." + sig, now=1000).generation == 0


@pytest.mark.parametrize("generation", [-1, 1.5, True, "3"])
def test_bad_generation_is_refused_at_mint(generation):
    with pytest.raises(ValueError, match="generation"):
        mint_token("k", "a", [VGpuClaim("v", 10, 10)], generation=generation)


@pytest.mark.parametrize("tamper", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),          # signature
    lambda t: t.split(".")[0] + "." + t.split(".")[1][::-1] + "." + t.split(".")[2],  # payload
    lambda t: "v2" + t[2:],                                               # version
    lambda t: t.replace(".", "", 1),                                      # shape
    lambda t: "v1.!!!.???",                                               # encoding
])
def test_tampered_tokens_are_refused(tamper):
    with pytest.raises(TokenError):
        verify_token("k", tamper(mint_token("k", "a", [VGpuClaim("v", 10, 10)])))


def test_forged_with_another_secret():
    with pytest.raises(TokenError, match="signature does not match"):
        verify_token("k", mint_token("not-k", "a", [VGpuClaim("v", 10, 10)]))


def test_expired():
    token = mint_token("k", "a", [VGpuClaim("v", 10, 10)], ttl_s=10, now=1000)
    with pytest.raises(TokenError, match="expired"):
        verify_token("k", token, now=1011)


def test_no_secret_is_an_error():
    with pytest.raises(TokenError, match="session_secret"):
        mint_token("", "a", [])


@pytest.mark.parametrize("token, words", [
    (make_token(secret="someone-else"), "signature does not match"),
    (make_token(ttl_s=-5), "expired"),
    ("garbage", "malformed"),
])
@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_server_refuses_bad_tokens(endpoint_for, transport, token, words):
    with pytest.raises(CudaError) as caught:
        Connection(token=token, **endpoint_for(transport))
    assert caught.value.code == CUresult.CUDA_ERROR_NOT_PERMITTED
    assert words in caught.value.message


def test_token_for_another_gpu_is_refused(endpoint_for):
    token = mint_token(SECRET, "a", [VGpuClaim("v", 10, 10, gpu_uuid="GPU-elsewhere")])
    with pytest.raises(CudaError, match="vGPU index 0 does not exist"):
        Connection(token=token, **endpoint_for("unix"))


def test_token_expiring_during_a_session_does_not_cut_it(endpoint_for):
    # Tokens gate the start of a session; the controller ends live sessions
    # by preemption (issue 5), not by expiry.
    connection = Connection(token=make_token(ttl_s=1), **endpoint_for("unix"))
    time.sleep(1.1)
    connection.ping()
    connection.close()
