# SPDX-License-Identifier: Apache-2.0
"""The end-to-end harness: ``image`` builds the guest image (Debian's kernel and an initramfs with
the in-VM test program, guest/ at the top of the tree), and ``vm`` runs it under libvirt and reads
its results from the serial console. May import ``xml`` and the base layer: it drives a VM as an
operator would, through libvirt."""
