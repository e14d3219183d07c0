"""Domain errors. Services raise these; each API surface renders them in its own error format."""

from __future__ import annotations


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    status_code = 404
    code = "not_found"

    def __init__(self, resource_type: str, resource_id: str) -> None:
        super().__init__(f"{resource_type.replace('_', ' ').capitalize()} not found")
        self.resource_type = resource_type
        self.resource_id = resource_id


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class AuthenticationFailed(DomainError):
    status_code = 401
    code = "authentication_error"


class PermissionDenied(DomainError):
    status_code = 403
    code = "permission_error"

    def __init__(self, message: str = "You do not have permission to access this resource") -> None:
        super().__init__(message)


class InvalidField(DomainError):
    """A value that passed the schema but breaks a business rule; rendered like a 422 validation error."""

    status_code = 422
    code = "validation_error"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ServiceUnavailable(DomainError):
    """A dependency (Temporal, the database) cannot be reached right now."""

    status_code = 503
    code = "service_unavailable"
