# SPDX-License-Identifier: Apache-2.0
"""Every error the package raises is a SynthError, and each kind carries its own errno."""

from __future__ import annotations

import errno

import pytest

from libvirt_synth import abi, errors
from libvirt_synth.daemon.client import RpcError
from libvirt_synth.hook.run import HookError


@pytest.mark.parametrize(("cls", "code", "builtin"), [
    (errors.NotFoundError, errno.ENOENT, FileNotFoundError),
    (errors.PermissionError, errno.EACCES, PermissionError),
    (errors.TimeoutError, errno.ETIMEDOUT, TimeoutError),
    (errors.DeviceError, errno.EIO, OSError),
    (errors.BusyError, errno.EBUSY, OSError),
    (errors.NoSpaceError, errno.ENOSPC, OSError),
    (errors.NotSupportedError, errno.EOPNOTSUPP, OSError),
])
def test_each_kind_sets_its_own_errno(cls: type[OSError], code: int, builtin: type[BaseException]) -> None:
    e = cls("what went wrong")
    assert (e.errno, str(e), e.strerror) == (code, "what went wrong", "what went wrong")
    assert isinstance(e, errors.SynthError) and isinstance(e, builtin)
    given = cls(errno.EEXIST, "it is there")
    assert (given.errno, str(given)) == (errno.EEXIST, "it is there")


def test_rpc_and_hook_errors_are_synth_errors() -> None:
    assert issubclass(RpcError, errors.SynthError) and issubclass(HookError, errors.SynthError)


def test_the_abi_parsers_raise_synth_errors() -> None:
    with pytest.raises(errors.ValueError, match="unknown device class 'crypt'"):
        abi.DevClass.parse("crypt")


def test_every_status_has_an_exception_of_its_own() -> None:
    from libvirt_synth._native import ffi, lib
    from libvirt_synth.guest import raise_for_status

    assert {int(s) for s in abi.Status} == set(range(lib.SYNTH_ST_MAX)), "a SYNTH_ST_* without a Status"
    raise_for_status(abi.Status.OK, 0, "nop")
    seen: dict[type[errors.OpError], abi.Status] = {}
    for st in abi.Status:
        if st == abi.Status.OK:
            continue
        with pytest.raises(errors.OpError) as e:
            raise_for_status(st, 512, "an op")
        cls = type(e.value)
        assert cls is not errors.OpError, f"{st.name} has no exception class of its own"
        assert cls not in seen, f"{st.name} and {seen.get(cls)} share {cls.__name__}"
        seen[cls] = st
        assert e.value.status == st and isinstance(e.value, errors.SynthError)
        assert str(e.value).startswith(f"an op: {ffi.string(lib.synth_status_str(st)).decode()}")
    with pytest.raises(errors.OpError) as e:
        raise_for_status(lib.SYNTH_ST_MAX, 0, "an op")
    assert type(e.value) is errors.OpError and e.value.status == lib.SYNTH_ST_MAX


@pytest.mark.parametrize(("status", "cls"), [
    (abi.Status.AUTH_FAILED, errors.AuthenticationError),
    (abi.Status.NO_SESSION, errors.UnknownSessionError),
    (abi.Status.INVALID, errors.InvalidOpError),
    (abi.Status.NOT_SUPPORTED, errors.UnsupportedOpError),
    (abi.Status.NO_RESOURCES, errors.NoResourcesError),
    (abi.Status.RETRY, errors.RetryError),
    (abi.Status.QUOTA, errors.QuotaError),
    (abi.Status.BAD_DATA, errors.CorruptDataError),
    (abi.Status.DEVICE_ERROR, errors.DeviceOpError),
    (abi.Status.LIMIT, errors.LimitError),
])
def test_status_exceptions_by_name(status: abi.Status, cls: type[errors.OpError]) -> None:
    from libvirt_synth.guest import raise_for_status

    with pytest.raises(cls):
        raise_for_status(status, 0, "an op")


def test_output_too_small_says_how_much_and_bad_input_is_a_value_error() -> None:
    from libvirt_synth.guest import raise_for_status

    with pytest.raises(errors.OutputTooSmallError, match=r"\(4096 bytes needed\)") as e:
        raise_for_status(abi.Status.NO_SPACE, 4096, "decompress")
    assert e.value.needed == 4096
    for status in (abi.Status.INVALID, abi.Status.BAD_DATA):
        with pytest.raises(ValueError):
            raise_for_status(status, 0, "an op")
    with pytest.raises(errors.RetryError, match="retry .not executed: submit it again"):
        raise_for_status(abi.Status.RETRY, 0, "encrypt")
