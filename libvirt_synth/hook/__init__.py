# SPDX-License-Identifier: Apache-2.0
"""The libvirt qemu hook: ``run`` (what libvirt runs before and after each VM start), ``metadata``
(the reader of the domain's ``<synth:devices>`` element) and ``install`` (copy it under
/etc/libvirt/hooks). ``run`` and ``metadata`` import the standard library and ``capabilities`` and
``errors`` only: libvirt waits for the hook on every VM start. Nothing here may import the C core,
the host side or the daemon (the hook talks to virt-synthd over its socket, and never calls
libvirt)."""
