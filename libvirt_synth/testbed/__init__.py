# SPDX-License-Identifier: Apache-2.0
"""The end-to-end harness: ``image`` builds the guest image (Debian's kernel and an initramfs with
the in-VM test program, guest/ at the top of the tree), ``vm`` runs it under libvirt and reads
its results from the serial console, ``soak`` checks the continuous workload a migrating guest
runs, and ``hosts`` starts two libvirtd "hosts" on one machine, each with its own virt-synthd.
May import ``xml``, the daemon's client, the hook's installer and the base layer: it drives VMs as
an operator would, through libvirt."""
