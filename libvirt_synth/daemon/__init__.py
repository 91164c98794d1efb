# SPDX-License-Identifier: Apache-2.0
"""virt-synthd: the host backend daemon."""
