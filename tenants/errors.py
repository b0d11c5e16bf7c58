"""Errors the domain services raise; the API turns them into problem+json answers."""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses; `errors` names the offending fields."""

    status = 400

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or {}


class ValidationFailed(DomainError):
    status = 422


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


def field_error(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", {field: [message]})
