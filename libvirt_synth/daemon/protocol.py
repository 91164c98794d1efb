# SPDX-License-Identifier: Apache-2.0
"""virt-synthd's JSON-RPC 2.0 protocol as both ends know it: the error codes. Standard library
only: the client (and so the CLI) imports it."""

from __future__ import annotations

# JSON-RPC error codes: the standard ones, then ours.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
PERMISSION_DENIED = -32001
NOT_FOUND = -32002
INVALID_VALUE = -32003
DEVICE_ERROR = -32004
NOT_SUPPORTED = -32005
