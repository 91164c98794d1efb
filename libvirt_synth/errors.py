# SPDX-License-Identifier: Apache-2.0
"""One exception base for the project. Each subclass also inherits the matching builtin, so a
caller may catch either ``SynthError`` or, say, ``ValueError``."""

from __future__ import annotations

import builtins
import errno as _errno
import os


class SynthError(Exception):
    """Base of every error raised by libvirt_synth."""


class ValueError(builtins.ValueError, SynthError):  # noqa: A001 - deliberate, as the builtin
    """An argument is malformed or out of range."""


class _OSErrorMessage:
    """OSError subclasses print as '[Errno N] message'; ours print the message alone. Each sets
    its own errno (``ERRNO``): ``NotFoundError("no device x0")`` has errno ENOENT. Give one only
    where it says more, as ``DeviceError(errno.EBUSY, message)``."""

    ERRNO = 0

    def __init__(self, *args: object) -> None:
        if len(args) == 1:
            args = (self.ERRNO, args[0])
        super().__init__(*args)

    def __str__(self) -> str:
        strerror = getattr(self, "strerror", None)
        return str(strerror) if strerror else super().__str__()


class NotFoundError(_OSErrorMessage, FileNotFoundError, SynthError):
    """A device, region or session does not exist."""

    ERRNO = _errno.ENOENT


class PermissionError(_OSErrorMessage, builtins.PermissionError, SynthError):  # noqa: A001
    """The caller may not do this."""

    ERRNO = _errno.EACCES


class TimeoutError(_OSErrorMessage, builtins.TimeoutError, SynthError):  # noqa: A001
    """The other side did not answer in time."""

    ERRNO = _errno.ETIMEDOUT


class DeviceError(_OSErrorMessage, OSError, SynthError):
    """The device or its backend failed, or the device needs a reset."""

    ERRNO = _errno.EIO


class BusyError(DeviceError):
    """Someone else holds it: another daemon serves the state directory or the region."""

    ERRNO = _errno.EBUSY


class NoSpaceError(DeviceError):
    """No room for it: a region's blocks on a full file system."""

    ERRNO = _errno.ENOSPC


class NotSupportedError(DeviceError):
    """The device does not serve this operation, algorithm or parameter."""

    ERRNO = _errno.EOPNOTSUPP


class OpError(SynthError):
    """An operation completed with an error status. ``status`` is the SYNTH_ST_* code. Each status
    has a subclass of its own (``guest.raise_for_status`` picks it); a status this library does not
    know is raised as ``OpError`` itself."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class AuthenticationError(OpError):
    """A tag or MAC did not verify; the output was zeroed."""


class UnknownSessionError(OpError):
    """The session id is not known to this device."""


class InvalidOpError(OpError, builtins.ValueError):
    """The device rejected the operation's arguments (offsets, lengths, sizes)."""


class OutputTooSmallError(OpError):
    """The destination buffer is too small; ``needed`` bytes are required."""

    def __init__(self, status: int, message: str, needed: int) -> None:
        super().__init__(status, message)
        self.needed = needed


class UnsupportedOpError(OpError):
    """The device does not serve this opcode, algorithm or parameter (NOT_SUPPORTED)."""


class NoResourcesError(OpError):
    """The device had no room for it (NO_RESOURCES): its session or stream table is full, or a
    frame had nowhere to go (no link, no receive buffer posted by the peer)."""


class RetryError(OpError):
    """The operation was not executed, e.g. the backend restarted: submit it again (RETRY)."""


class QuotaError(OpError):
    """The operation was not executed: the device's quota is spent; submit it again later (QUOTA)."""


class CorruptDataError(OpError, builtins.ValueError):
    """The input data is corrupt, truncated, or has bytes after its end (BAD_DATA)."""


class DeviceOpError(OpError):
    """The backend or its plugin failed the operation (DEVICE_ERROR)."""


class LimitError(OpError):
    """A limit of the device was reached (LIMIT): a stream's total output, the zstd window, the
    input chunk, a frame's length."""


def from_errno(rc: int, what: str) -> SynthError:
    """Turn a negative errno from the C core into the matching exception, with a message that
    says what failed and, where it helps, what to do."""
    code = -rc
    text = os.strerror(code)
    if code == _errno.ENOENT:
        return NotFoundError(code, f"{what}: {text}")
    if code in (_errno.EACCES, _errno.EPERM):
        return PermissionError(code, f"{what}: {text} (run as root or as the region's owner)")
    if code == _errno.ETIMEDOUT:
        return TimeoutError(code, f"{what}: no backend answered; is a backend serving this device?")
    if code in (_errno.EINVAL, _errno.ENOSPC, _errno.EEXIST):
        return ValueError(f"{what}: {text}")
    if code == _errno.EPROTO:
        return DeviceError(code, f"{what}: not a synthetic device region (bad magic)")
    if code == _errno.EPROTONOSUPPORT:
        return NotSupportedError(code, f"{what}: device ABI major version not supported by this library")
    if code == _errno.ENOTSUP:
        return NotSupportedError(code, f"{what}: not supported")
    if code == _errno.EIO:
        return DeviceError(code, f"{what}: device needs a reset (the backend stopped serving it)")
    if code == _errno.EBUSY:
        return DeviceError(code, f"{what}: busy (operations still in flight on this queue)")
    return DeviceError(code, f"{what}: {text}")
