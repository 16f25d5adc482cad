"""Revoked token generations of allocations, as the controller told them.

When an allocation is deleted, unbound, preempted, resized down or moved,
the controller bumps its binding generation and casts
``revoke_allocation(allocation, below_generation, reason)``; tokens minted
before carry an older generation (``orionx_common.session_token``). The
agent keeps what it was told and forwards it to its GPU servers; a GPU
server ends the sessions of older generations and refuses their tokens at
HELLO. Kept in memory, bounded, and forgotten once every token it could
refuse has expired anyway.
"""

import dataclasses
import threading
import time

from orionx_common.session_token import DEFAULT_TTL_S

# Revocations kept at once; past this the one that expires first goes (its
# tokens are the oldest, and a token refused nowhere else still dies at
# its expiry).
MAX_REVOCATIONS = 100_000


@dataclasses.dataclass
class Revocation:
    allocation_id: str
    below_generation: int
    reason: str
    expires_at: float  # unix seconds: no token it refuses is valid after this


def check_revocation_args(allocation_id, below_generation, reason):
    """(allocation_id, below_generation, reason) as str, int, str, or ValueError."""
    if not isinstance(allocation_id, str) or not allocation_id:
        raise ValueError("revoke: allocation_id must be a non-empty string")
    if isinstance(below_generation, bool) or not isinstance(below_generation, int) or \
            below_generation < 0:
        raise ValueError("revoke of allocation %s: below_generation must be an int >= 0, "
                         "got %r" % (allocation_id, below_generation))
    return allocation_id, below_generation, str(reason or "revoked by the controller")


class RevocationList:
    """allocation id -> the generation below which its tokens are refused."""

    def __init__(self, token_ttl_s=DEFAULT_TTL_S, max_entries=MAX_REVOCATIONS):
        self.token_ttl_s = token_ttl_s
        self.max_entries = max_entries
        self._entries = {}
        self._lock = threading.Lock()

    def add(self, allocation_id, below_generation, reason, now=None):
        """Remember a revocation (a lower generation than one known changes
        nothing); returns the Revocation now in force."""
        allocation_id, below_generation, reason = check_revocation_args(
            allocation_id, below_generation, reason)
        now = time.time() if now is None else now
        with self._lock:
            self._expire(now)
            known = self._entries.get(allocation_id)
            if known is not None and known.below_generation >= below_generation:
                known.expires_at = now + self.token_ttl_s
                return known
            if known is None and len(self._entries) >= self.max_entries:
                oldest = min(self._entries.values(), key=lambda r: r.expires_at)
                del self._entries[oldest.allocation_id]
            entry = self._entries[allocation_id] = Revocation(
                allocation_id, below_generation, reason, now + self.token_ttl_s)
            return entry

    def refusing(self, allocation_id, generation, now=None):
        """The Revocation that refuses a token of this generation, or None."""
        now = time.time() if now is None else now
        with self._lock:
            entry = self._entries.get(allocation_id)
            if entry is None or entry.expires_at <= now:
                return None
            return entry if generation < entry.below_generation else None

    def all(self, now=None):
        """Every revocation in force, for a GPU server that (re)starts."""
        now = time.time() if now is None else now
        with self._lock:
            self._expire(now)
            return list(self._entries.values())

    def __len__(self):
        with self._lock:
            return len(self._entries)

    def _expire(self, now):
        for allocation_id in [a for a, r in self._entries.items() if r.expires_at <= now]:
            del self._entries[allocation_id]
