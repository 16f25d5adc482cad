"""API users and bearer tokens for ``[api] auth_strategy = local``.

Passwords are kept only as argon2id hashes (slow on purpose, so a stolen
database does not give the passwords away quickly); tokens only as their
SHA-256 digest (tokens are long random strings, a fast hash is enough and
lets every request be checked with one indexed lookup).
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
        user = session.scalar(sa.select(models.User).where(models.User.name == name))
        try:
            _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        except argon2.exceptions.VerificationError:
            user = None
        if user is None:
            LOG.info("Refused a token for user name %r: wrong name or password", name)
            raise exception.NotAuthorized(
                "Wrong user name or password; an admin can create users with "
                "'orionx-manage user create'"
            )
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
        now = models.utcnow()
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
