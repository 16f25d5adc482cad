"""API users and bearer tokens for ``[api] auth_strategy = local``.

Passwords are kept only as argon2id hashes (slow on purpose, so a stolen
database does not give the passwords away quickly); tokens only as their
SHA-256 digest (tokens are long random strings, a fast hash is enough and
lets every request be checked with one indexed lookup).

Wrong passwords throttle the guesser, not the account's owner
(docs/console.md, "Login lockout"):

- every attempt is counted against its source (the client's address)
  before the password is checked, and given back when it was right; after
  ``[api] lockout_failure_attempts`` a source takes no password, for any
  account, for ``lockout_duration_s``;
- each wrong password for an account makes every source that sent a wrong
  password wait twice as long before it tries that account again (1, 2,
  4 ... seconds, at most ``lockout_duration_s``), which slows a guess spread
  over many sources; a source without failures is not kept waiting, so the
  owner still logs in.

Counts live in the database and change with one locked UPDATE per attempt,
so parallel guesses count exactly as sequential ones, and every API process
and the console share them.
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
USERS = models.User.__table__
LOGIN_SOURCES = models.LoginSource.__table__
SOURCE_MAX_CHARS = 64
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
    """End user ``name``'s wait at once and forget its failed logins, and
    those of every source (ending their lockouts)."""
    with db_api.transaction() as session:
        user = _find(session, name)
        user.failed_logins, user.locked_until = 0, None
        session.execute(sa.delete(LOGIN_SOURCES))
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


def issue_token(name, password, lifetime_s=None, source=None):
    """Check ``name`` and ``password`` sent from ``source`` (the client's
    address) and return ``{"token", "expires_at"}``.

    Raises :class:`NotAuthorized` with one message for a wrong name and a
    wrong password, so callers cannot tell which one was wrong, and
    :class:`AccountLocked` while the source is stopped or must wait (see
    the module's docstring). ``lifetime_s`` defaults to ``[api]
    token_lifetime_s``."""
    if lifetime_s is None:
        lifetime_s = CONF.api.token_lifetime_s
    source = (source or "unknown")[:SOURCE_MAX_CHARS]
    now = models.utcnow()
    user, refusal = _count_attempt(name, source, now)
    # Raised after the transaction, so the attempt it counted is kept.
    if refusal is not None:
        raise refusal
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except argon2.exceptions.VerificationError:
        if user is not None and CONF.api.lockout_failure_attempts:
            _count_failure(user.id, now)
        LOG.info("Refused a token for user name %r from %s: wrong name or password",
                 name, source)
        raise exception.NotAuthorized(
            "Wrong user name or password; an admin can create users with "
            "'orionx-manage user create'") from None
    with db_api.transaction() as session:
        _forgive_attempt(session, source)
        found = session.get(models.User, user.id)
        if found is None:
            raise exception.NotAuthorized("User %s was deleted meanwhile" % name)
        return _new_token(session, found, password, now, lifetime_s)


def _locked_source(session, source):
    """The source's row, locked for this transaction (created at its first
    attempt)."""
    query = sa.select(LOGIN_SOURCES).where(LOGIN_SOURCES.c.source == source).with_for_update()
    row = session.execute(query).first()
    if row is None:
        try:
            # A savepoint: a concurrent first attempt of the same source may
            # insert it first, which must not abort this transaction.
            with session.begin_nested():
                session.execute(sa.insert(LOGIN_SOURCES).values(source=source, failed_logins=0))
        except sa.exc.IntegrityError:
            pass
        row = session.execute(query).one()
    return row


def _count_attempt(name, source, now):
    """Count an attempt against its source before the password is checked
    (given back by :func:`_forgive_attempt` when it is right), so parallel
    guesses count exactly as sequential ones: one UPDATE of the source's
    locked row per attempt. Returns (the user row or None, the
    AccountLocked to raise or None)."""
    limit = CONF.api.lockout_failure_attempts
    with db_api.transaction() as session:
        row = _locked_source(session, source)
        if row.locked_until is not None and row.locked_until > now:
            left_s = _seconds_left(row.locked_until, now)
            return None, exception.AccountLocked(
                "Source %s is locked after %d wrong passwords (for any user); try again in "
                "%d s, or ask an admin to end it ('orionx-manage user unlock NAME')"
                % (source, row.failed_logins, left_s), retry_after_s=left_s)
        user = session.execute(sa.select(USERS).where(USERS.c.name == name)).first()
        # A lockout that is over starts the count afresh.
        failed = (0 if row.locked_until is not None else row.failed_logins) + 1
        session.execute(
            sa.update(LOGIN_SOURCES).where(LOGIN_SOURCES.c.id == row.id).values(
                failed_logins=failed, last_failed_at=now,
                locked_until=(now + datetime.timedelta(seconds=CONF.api.lockout_duration_s)
                              if limit and failed >= limit else None)))
        if limit and failed >= limit:
            LOG.warning("Login source %s locked for %d s after %d wrong passwords", source,
                        CONF.api.lockout_duration_s, failed)
        if user is not None and failed > 1 and user.locked_until is not None and \
                user.locked_until > now:
            left_s = _seconds_left(user.locked_until, now)
            return user, exception.AccountLocked(
                "User %s had %d wrong passwords in a row: a source that sent wrong passwords "
                "waits %d s before it tries again; an admin can end the wait now "
                "('orionx-manage user unlock %s')" % (name, user.failed_logins, left_s, name),
                retry_after_s=left_s)
        return user, None


def _forgive_attempt(session, source):
    """The password was right: the attempt counted against the source
    was no guess."""
    row = _locked_source(session, source)
    failed = max(0, row.failed_logins - 1)
    still_locked = CONF.api.lockout_failure_attempts and \
        failed >= CONF.api.lockout_failure_attempts
    session.execute(
        sa.update(LOGIN_SOURCES).where(LOGIN_SOURCES.c.id == row.id).values(
            failed_logins=failed, locked_until=row.locked_until if still_locked else None))


def _count_failure(user_id, now):
    """A wrong password for the account: one more in a row, and sources
    that sent one wait ``2 ** (failures - 1)`` seconds (at most ``[api]
    lockout_duration_s``) before they try it again."""
    with db_api.transaction() as session:
        failed = session.execute(
            sa.select(USERS.c.failed_logins).where(USERS.c.id == user_id).with_for_update()
        ).scalar()
        if failed is None:
            return  # deleted meanwhile
        failed += 1
        delay_s = min(2 ** min(failed - 1, 30), CONF.api.lockout_duration_s)
        session.execute(sa.update(USERS).where(USERS.c.id == user_id).values(
            failed_logins=failed, locked_until=now + datetime.timedelta(seconds=delay_s)))


def _seconds_left(until, now):
    return max(1, int((until - now).total_seconds() + 0.999))


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
