# SPDX-License-Identifier: Apache-2.0
"""Domain XML with synthetic devices (``virt-synth xml`` and ``virt-synth define``).

- ``config``: one class per element we write or read (``<shmem>``, ``<synth:devices>``,
  ``<synth:device>``), object <-> XML only;
- ``designer``: the policy: region names, sizes, defaults, which elements change (``inject``);
- ``spec``: the device list as the user gives it (YAML or ``--device``);
- ``template``: ``xml-templates/`` and their placeholders;
- ``tree``: edits that keep the document's layout;
- ``validate``: parsing and libvirt's RNG schema, errors with line and reason;
- ``connect``: define and undefine through libvirt-python.

The hook's side of the metadata contract is ``libvirt_synth.hook.metadata`` (standard library only).
May import the hook's metadata reader and the base layer; never the daemon, the host side or the CLI.
"""
