"""The error tree every layer raises; the API maps it to Graph error JSON, the CLI to exit codes."""

from __future__ import annotations


class DomainError(Exception):
    """Base: `code` is Graph's error code, `message` is shown to the caller as is."""

    code = "BadRequest"

    def __init__(self, message: str, *, reason: str | None = None, target: str | None = None):
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.target = target


class ValidationFailed(DomainError):
    code = "BadRequest"


class Unauthorized(DomainError):
    code = "InvalidAuthenticationToken"


class Forbidden(DomainError):
    code = "Forbidden"


class NotFound(DomainError):
    code = "ResourceNotFound"


class Conflict(DomainError):
    code = "Conflict"


class PreconditionFailed(DomainError):
    code = "PreconditionFailed"


class NotImplementedByCountersign(DomainError):
    """A Graph feature Countersign does not implement (501, so a client does not take it for
    a property it got wrong)."""

    code = "NotImplemented"


class AccountLocked(DomainError):
    code = "AccountLocked"


class NotEligibleToApprove(DomainError):
    """Graph answers 400 BadRequest with this exact message; `reason` names the failed check."""

    code = "BadRequest"

    def __init__(self, reason: str):
        super().__init__(
            "Requesting user does not have proper permissions to approve", reason=reason
        )


class ApprovalRequired(DomainError):
    """The write was turned into an approval request; `request_id` goes to x-msft-approval-code."""

    code = "ApprovalRequired"

    def __init__(self, request_id: str, message: str):
        super().__init__(message)
        self.request_id = request_id
