# SPDX-License-Identifier: Apache-2.0
"""Builds the C core (native/) with cffi; all other metadata is in pyproject.toml."""

from setuptools import setup

setup(cffi_modules=["native/build_ffi.py:ffibuilder"])
