"""Errors of the controller's domain logic.

Each class carries the HTTP status the REST API answers with (``code``), so
handlers map an error to a response without a table of their own. Messages
reach users: they name the thing, the limit and what to do.
"""


class OrionXError(Exception):
    """Base of every error the controller reports to a caller."""

    code = 500
    message = "An unexpected error occurred in the OrionX controller."

    def __init__(self, message=None):
        if message is not None:
            self.message = message
        super().__init__(self.message)

    def __str__(self):
        return self.message


class InvalidRequest(OrionXError):
    code = 400
    message = "The request is invalid."


class NotAuthorized(OrionXError):
    code = 401
    message = "Authentication is required: present a valid token."


class AccountLocked(NotAuthorized):
    """Too many wrong passwords in a row: the account takes no password for
    a while (``retry_after_s``), right or wrong."""

    code = 429
    message = "Too many failed logins; try again later."

    def __init__(self, message=None, retry_after_s=None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Forbidden(OrionXError):
    code = 403
    message = "This role may not perform the request."


class NotFound(OrionXError):
    code = 404
    message = "The object was not found."


class Conflict(OrionXError):
    code = 409
    message = "The request conflicts with the current state of the pool."


class NeverFits(InvalidRequest):
    """The request is larger than any GPU (or set of GPUs) the pool has, so it
    would wait forever; it is refused instead of queued."""

    message = "The request can never fit in the pool."


class NoCapacity(Conflict):
    """The request does not fit now and the caller asked not to queue it."""

    message = "The pool has no free capacity for the request now."


class ClaimRaceLost(Conflict):
    """Other controllers kept changing the chosen GPUs; every retry lost."""

    message = "The chosen GPUs kept changing under concurrent requests; retry the request."
