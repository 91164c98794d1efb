# SPDX-License-Identifier: Apache-2.0
"""The fake sysfs trees hold the kernel's symlink cycles (a PF's virtfnN and its VFs' physfn link to
each other): pytest must not walk into them looking for tests."""

collect_ignore_glob = ["*"]
