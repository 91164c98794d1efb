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
