"""Data-plane session tokens: minted by the controller, checked by GPU servers.

A token is ``v1.<payload>.<signature>``: the payload is base64url (no
padding) of compact JSON, the signature base64url of HMAC-SHA256 over the
text ``v1.<payload>`` keyed with ``[DEFAULT] session_secret``. The payload::

    {"aid": "<allocation id>", "exp": <expiry, unix seconds>, "gen": <generation>,
     "vgpus": [{"id": "<vGPU id>", "compute_pct": 25, "memory_mb": 4096,
                "gpu": "<physical GPU uuid, optional>"}]}

``gen`` is the allocation's binding generation when the token was minted:
the controller bumps it whenever the allocation's vGPUs are bound anew,
unbound, preempted, resized down, moved or deleted, and tells the hosts to
revoke older generations (docs/agent.md, "Revocation"). A token without
``gen`` reads as generation 0.

A GPU server takes a session's limits from the token alone, so it needs no
database. Standard library only. The controller mints tokens, agents and
GPU servers verify them; a guest only passes its token on, as opaque text.

Mint a token for development (signed with the configured secret) with::

    orionx-gpu-server --config-file orionx.conf --print-token --token-memory-mb 1024
"""

import base64
import binascii
import dataclasses
import hashlib
import hmac
import json
import time

TOKEN_VERSION = "v1"
DEFAULT_TTL_S = 3600


class TokenError(Exception):
    """The token is malformed, forged or expired; the message says which."""


@dataclasses.dataclass(frozen=True)
class VGpuClaim:
    id: str
    compute_pct: int
    memory_mb: int
    gpu_uuid: str | None = None

    @property
    def memory_bytes(self):
        return self.memory_mb << 20


@dataclasses.dataclass(frozen=True)
class SessionClaims:
    allocation_id: str
    vgpus: tuple
    expires_at: float
    generation: int = 0


def _b64encode(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text):
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise TokenError("session token is not valid base64url: %s" % exc) from None


def _key(secret):
    if not secret:
        raise TokenError("no session secret configured: set [DEFAULT] session_secret")
    return secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)


def _signature(secret, signed_text):
    return hmac.new(_key(secret), signed_text.encode("ascii"), hashlib.sha256).digest()


def mint_token(secret, allocation_id, vgpus, ttl_s=DEFAULT_TTL_S, now=None, generation=0):
    """A signed token for ``allocation_id`` holding ``vgpus`` (VGpuClaim or
    dicts with id, compute_pct, memory_mb and optional gpu), valid ``ttl_s``,
    of binding generation ``generation`` (an int >= 0)."""
    if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
        raise ValueError("token generation must be an int >= 0, got %r" % (generation,))
    now = time.time() if now is None else now
    claims = []
    for vgpu in vgpus:
        if isinstance(vgpu, dict):
            vgpu = VGpuClaim(str(vgpu["id"]), int(vgpu["compute_pct"]),
                             int(vgpu["memory_mb"]), vgpu.get("gpu"))
        item = {"id": vgpu.id, "compute_pct": vgpu.compute_pct, "memory_mb": vgpu.memory_mb}
        if vgpu.gpu_uuid:
            item["gpu"] = vgpu.gpu_uuid
        claims.append(item)
    body = {"aid": str(allocation_id), "exp": int(now + ttl_s), "gen": generation,
            "vgpus": claims}
    payload = _b64encode(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    signed_text = "%s.%s" % (TOKEN_VERSION, payload)
    return "%s.%s" % (signed_text, _b64encode(_signature(secret, signed_text)))


def verify_token(secret, token, now=None):
    """SessionClaims of a token signed with ``secret``, or TokenError."""
    if isinstance(token, bytes | bytearray | memoryview):
        token = bytes(token).decode("ascii", "replace")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_VERSION:
        raise TokenError("session token is malformed: expected %s.<payload>.<signature>"
                         % TOKEN_VERSION)
    signed_text = "%s.%s" % (parts[0], parts[1])
    if not hmac.compare_digest(_signature(secret, signed_text), _b64decode(parts[2])):
        raise TokenError("session token signature does not match: it was not minted "
                         "with this pool's session_secret")
    claims = _parse_payload(_b64decode(parts[1]))
    now = time.time() if now is None else now
    if claims.expires_at <= now:
        raise TokenError("session token of allocation %s expired %d s ago: ask the "
                         "controller for a new one"
                         % (claims.allocation_id, now - claims.expires_at))
    return claims


def _parse_payload(raw):
    try:
        body = json.loads(raw)
        vgpus = tuple(
            VGpuClaim(str(v["id"]), int(v["compute_pct"]), int(v["memory_mb"]), v.get("gpu"))
            for v in body["vgpus"])
        generation = body.get("gen", 0)
        if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
            raise ValueError("gen must be an int >= 0, got %r" % (generation,))
        return SessionClaims(str(body["aid"]), vgpus, float(body["exp"]), generation)
    except (ValueError, KeyError, TypeError) as exc:
        raise TokenError("session token payload is not valid: %s" % exc) from None
