"""API users and bearer tokens for ``[api] auth_strategy = local``.

Passwords are kept only as argon2id hashes (slow on purpose, so a stolen
database does not give the passwords away quickly); tokens only as their
SHA-256 digest (tokens are long random strings, a fast hash is enough and
lets every request be checked with one indexed lookup).

After ``[api] lockout_failure_attempts`` wrong passwords in a row an account
takes no password, right or wrong, for ``lockout_duration_s``: guessing
stays slow even where the API is reachable by anyone. The count lives in the
database, so every API process and the console share it.
"""

import datetime
import hashlib
import secrets

import argon2
import sqlalchemy as sa
from oslo_log import log as logging

from orionx_nova import exception
from orionx_nova.conf import CONF
from orionx_nova.db import api as db_api
from orionx_nova.db import models
from orionx_nova.objects.formatting import iso8601

LOG = logging.getLogger(__name__)

ROLES = models.USER_ROLES
MIN_PASSWORD_CHARS = 8
NAME_MAX_CHARS = 255
# A working day: long enough for a shell session of `orionx` commands, short
# enough that a leaked token stops working soon.
_TOKEN_BYTES = 32

_hasher = argon2.PasswordHasher()
# Verified against when the user name is unknown, so a wrong name costs the
# same time as a wrong password and names cannot be probed by timing.
_DUMMY_HASH = _hasher.hash("not-a-password")


def _as_dict(user):
    return {
        "name": user.name,
        "role": user.role,
        "project_id": user.project_id,
        "created_at": iso8601(user.created_at),
        "locked_until": iso8601(user.locked_until),
    }


def _check_new_user(name, password, role):
    if not name or len(name) > NAME_MAX_CHARS:
        raise exception.InvalidRequest("User name must be 1 to %d characters" % NAME_MAX_CHARS)
    if role not in ROLES:
        raise exception.InvalidRequest("Role %r is not one of %s" % (role, ", ".join(ROLES)))
    if len(password or "") < MIN_PASSWORD_CHARS:
        raise exception.InvalidRequest(
            "Password of user %s has %d characters, fewer than the minimum of %d"
            % (name, len(password or ""), MIN_PASSWORD_CHARS)
        )


def create(name, password, role, project_id=None):
    """Create a user; raises :class:`Conflict` when the name is taken."""
    _check_new_user(name, password, role)
    password_hash = _hasher.hash(password)
    with db_api.transaction() as session:
        taken = session.scalar(sa.select(models.User.id).where(models.User.name == name))
        if taken is not None:
            raise exception.Conflict("User %s already exists; pick another name" % name)
        user = models.User(name=name, password_hash=password_hash, role=role, project_id=project_id)
        session.add(user)
        session.flush()
        LOG.info("Created user %s with role %s in project %s", name, role, project_id)
        return _as_dict(user)


def list():
    with db_api.transaction() as session:
        users = session.scalars(sa.select(models.User).order_by(models.User.name))
        return [_as_dict(user) for user in users]


def _find(session, name):
    user = session.scalar(sa.select(models.User).where(models.User.name == name))
    if user is None:
        raise exception.NotFound("User %s not found" % name)
    return user


def get(name):
    """User ``name``; NotFound when there is none."""
    with db_api.transaction() as session:
        return _as_dict(_find(session, name))


def set_role(name, role):
    """Give user ``name`` the role ``role``; its tokens keep working and
    carry the new role from their next request on."""
    if role not in ROLES:
        raise exception.InvalidRequest("Role %r is not one of %s" % (role, ", ".join(ROLES)))
    with db_api.transaction() as session:
        user = _find(session, name)
        old_role, user.role = user.role, role
        LOG.info("User %s changed from role %s to %s", name, old_role, role)
        return _as_dict(user)


def unlock(name):
    """End a lockout of user ``name`` at once and forget its failed logins."""
    with db_api.transaction() as session:
        user = _find(session, name)
        user.failed_logins, user.locked_until = 0, None
        LOG.info("User %s unlocked", name)
        return _as_dict(user)


def delete(name):
    """Delete user ``name`` and every token it holds."""
    with db_api.transaction() as session:
        session.delete(_find(session, name))
        LOG.info("Deleted user %s", name)


def revoke_token(token):
    """Forget a bearer token (logging out); unknown tokens are ignored."""
    with db_api.transaction() as session:
        session.execute(
            sa.delete(models.ApiToken).where(models.ApiToken.token_sha256 == _digest(token))
        )


def _digest(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(name, password, lifetime_s=None):
    """Check ``name`` and ``password`` and return ``{"token", "expires_at"}``.

    Raises :class:`NotAuthorized` with one message for a wrong name and a
    wrong password, so callers cannot tell which one was wrong.
    ``lifetime_s`` defaults to ``[api] token_lifetime_s``."""
    if lifetime_s is None:
        lifetime_s = CONF.api.token_lifetime_s
    with db_api.transaction() as session:
        # Locked for update: concurrent wrong passwords all count.
        user = session.scalar(sa.select(models.User).where(models.User.name == name)
                              .with_for_update())
        now = models.utcnow()
        _refuse_while_locked(user, now)
        try:
            _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        except argon2.exceptions.VerificationError:
            if user is not None:
                _count_failure(user, now)
            user = None
        if user is not None:
            return _new_token(session, user, password, now, lifetime_s)
    # Raised after the transaction, so the failure it counted is kept.
    LOG.info("Refused a token for user name %r: wrong name or password", name)
    raise exception.NotAuthorized(
        "Wrong user name or password; an admin can create users with "
        "'orionx-manage user create'")


def _refuse_while_locked(user, now):
    """AccountLocked while ``user``'s lockout lasts; a lockout that is over
    is cleared, with its count, so the next wrong passwords start afresh."""
    if user is None or user.locked_until is None:
        return
    if user.locked_until <= now:
        user.failed_logins, user.locked_until = 0, None  # the lockout is over
        return
    left_s = max(1, int((user.locked_until - now).total_seconds()))
    raise exception.AccountLocked(
        "User %s is locked after %d wrong passwords in a row; try again in %d s, or ask an "
        "admin to unlock it now ('orionx-manage user unlock %s')"
        % (user.name, user.failed_logins, left_s, user.name), retry_after_s=left_s)


def _count_failure(user, now):
    user.failed_logins += 1
    limit = CONF.api.lockout_failure_attempts
    if limit and user.failed_logins >= limit:
        user.locked_until = now + datetime.timedelta(seconds=CONF.api.lockout_duration_s)
        LOG.warning("User %s locked for %d s after %d wrong passwords in a row", user.name,
                    CONF.api.lockout_duration_s, user.failed_logins)


def _new_token(session, user, password, now, lifetime_s):
    """A new bearer token of ``user``, whose password was right."""
    user.failed_logins = 0
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    # Expired tokens of this user are dropped here rather than by a
    # separate cleaner job.
    session.execute(
        sa.delete(models.ApiToken).where(
            models.ApiToken.user_id == user.id, models.ApiToken.expires_at <= now
        )
    )
    # Hex, not base64url: a token that starts with "-" reads as an option
    # to `orionx --token ...` and to most other command lines.
    token = secrets.token_hex(_TOKEN_BYTES)
    expires_at = now + datetime.timedelta(seconds=lifetime_s)
    session.add(
        models.ApiToken(token_sha256=_digest(token), user_id=user.id, expires_at=expires_at)
    )
    return {"token": token, "expires_at": iso8601(expires_at)}


def identity_for_token(token):
    """``{"user_id", "project_id", "roles"}`` of a valid bearer token.

    Raises :class:`NotAuthorized` for an unknown or expired token."""
    with db_api.transaction() as session:
        row = session.execute(
            sa.select(models.ApiToken.expires_at, models.User)
            .join(models.User, models.ApiToken.user_id == models.User.id)
            .where(models.ApiToken.token_sha256 == _digest(token))
        ).first()
        if row is None:
            raise exception.NotAuthorized("Unknown bearer token; get one with POST /v1/auth/tokens")
        expires_at, user = row
        if expires_at <= models.utcnow():
            raise exception.NotAuthorized(
                "Bearer token expired at %s; get a new one with POST /v1/auth/tokens"
                % iso8601(expires_at)
            )
        return {"user_id": user.name, "project_id": user.project_id, "roles": [user.role]}
