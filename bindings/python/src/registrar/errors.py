"""Exceptions: one base class, one subclass per ``registrar_status`` code of the C interface.

Every exception carries the library's message (``str(error)``) and the numeric ``code``.
Messages come from the library, which never puts credentials in them; the wrapper adds none.
"""

from __future__ import annotations

import builtins
import enum

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Optional, Type


class ErrorCode(enum.IntEnum):
    """``registrar_status``: the result of every fallible C function."""

    OK = 0
    NULL_ARGUMENT = 1
    INVALID_UTF8 = 2
    INVALID_CONFIG = 3
    INVALID_ARGUMENT = 4
    TRANSPORT = 5
    TIMEOUT = 6
    UNAUTHORIZED = 7
    NOT_FOUND = 8
    REJECTED = 9
    SHUT_DOWN = 10
    FORKED = 11
    PANIC = 12


class RegistrarError(Exception):
    """Base class of every error raised by registrar."""

    #: The ``registrar_status`` this class stands for.
    code: ErrorCode = ErrorCode.OK

    def __init__(self, message: str, code: "Optional[int]" = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = _as_code(code)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.message, int(self.code)))


class NullArgumentError(RegistrarError, ValueError):
    """REGISTRAR_ERR_NULL_ARGUMENT: a required pointer was NULL (a bug in the wrapper)."""

    code = ErrorCode.NULL_ARGUMENT


class InvalidUtf8Error(RegistrarError, ValueError):
    """REGISTRAR_ERR_INVALID_UTF8: a string argument was not valid UTF-8."""

    code = ErrorCode.INVALID_UTF8


class InvalidConfigError(RegistrarError, ValueError):
    """REGISTRAR_ERR_INVALID_CONFIG: a setting is missing or malformed; the message names it."""

    code = ErrorCode.INVALID_CONFIG


class InvalidArgumentError(RegistrarError, ValueError):
    """REGISTRAR_ERR_INVALID_ARGUMENT: another argument was not acceptable."""

    code = ErrorCode.INVALID_ARGUMENT


class TransportError(RegistrarError, ConnectionError):
    """REGISTRAR_ERR_TRANSPORT: the registry could not be reached."""

    code = ErrorCode.TRANSPORT


class TimeoutError(RegistrarError, builtins.TimeoutError):
    """REGISTRAR_ERR_TIMEOUT: something did not happen in time (a wait, a request, a stop).

    Also a :class:`builtins.TimeoutError`. When the background thread knows why (e.g. wrong
    credentials), :meth:`registrar.Client.wait_registered` chains that error as ``__cause__``.
    """

    code = ErrorCode.TIMEOUT


class UnauthorizedError(RegistrarError, PermissionError):
    """REGISTRAR_ERR_UNAUTHORIZED: the registry refused the credentials (HTTP 401/403)."""

    code = ErrorCode.UNAUTHORIZED


class NotFoundError(RegistrarError, LookupError):
    """REGISTRAR_ERR_NOT_FOUND: the registry (or the client) does not know the thing asked for."""

    code = ErrorCode.NOT_FOUND


class RejectedError(RegistrarError):
    """REGISTRAR_ERR_REJECTED: the registry answered with another error status (400, 5xx)."""

    code = ErrorCode.REJECTED


class ShutDownError(RegistrarError):
    """REGISTRAR_ERR_SHUT_DOWN: the client was stopped or closed; it can do nothing more."""

    code = ErrorCode.SHUT_DOWN


class ForkedError(RegistrarError):
    """REGISTRAR_ERR_FORKED: the client was created in another process (this is a fork()
    child). Create a new client in this process."""

    code = ErrorCode.FORKED


class PanicError(RegistrarError):
    """REGISTRAR_ERR_PANIC: a bug inside registrar was caught at the boundary."""

    code = ErrorCode.PANIC


_BY_CODE: "Dict[int, Type[RegistrarError]]" = {
    cls.code: cls
    for cls in (
        NullArgumentError,
        InvalidUtf8Error,
        InvalidConfigError,
        InvalidArgumentError,
        TransportError,
        TimeoutError,
        UnauthorizedError,
        NotFoundError,
        RejectedError,
        ShutDownError,
        ForkedError,
        PanicError,
    )
}


def _as_code(code: int) -> ErrorCode:
    try:
        return ErrorCode(code)
    except ValueError:
        return ErrorCode.PANIC


def error_class(code: int) -> "Type[RegistrarError]":
    """The exception class for a status code (:class:`RegistrarError` for an unknown one)."""
    return _BY_CODE.get(int(code), RegistrarError)


def make_error(code: int, message: str) -> RegistrarError:
    """An exception instance for a non-zero status code and its message."""
    cls = error_class(code)
    if not message:
        message = f"registrar call failed with status {code}"
    if cls is RegistrarError:
        return RegistrarError(f"{message} (unknown status code {code})", code)
    return cls(message)
