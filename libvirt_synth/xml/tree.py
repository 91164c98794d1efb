# SPDX-License-Identifier: Apache-2.0
"""Edits that keep a document's layout: insert, remove and replace elements with the indentation
their siblings already have, and serialise with the original XML declaration. What the generator
does not touch comes out byte for byte as it went in (up to attribute quoting, which lxml
normalises to double quotes)."""

from __future__ import annotations

import re
from typing import Any

_DECL = re.compile(rb"^\s*(<\?xml[^>]*\?>)")
_ENCODING = re.compile(rb"""\s+encoding\s*=\s*["'][^"']*["']""")


def indent_unit(tree: Any) -> str | None:
    """The document's indentation step (e.g. two spaces), or None for a document on one line."""
    text = tree.getroot().text or ""
    if "\n" not in text:
        return None
    return text.rsplit("\n", 1)[1]


def level(el: Any) -> int:
    return sum(1 for _ in el.iterancestors())


def reindent(el: Any, lvl: int, unit: str | None) -> None:
    """Lay out a subtree we built (element-only content) at nesting level ``lvl``."""
    kids = list(el)
    if unit is None or not kids:
        return
    el.text = "\n" + unit * (lvl + 1)
    for c in kids:
        reindent(c, lvl + 1, unit)
        c.tail = "\n" + unit * (lvl + 1)
    kids[-1].tail = "\n" + unit * lvl


def insert(parent: Any, index: int, child: Any, unit: str | None) -> None:
    """Insert ``child`` as ``parent``'s ``index``-th node (comments count), indented like its siblings."""
    lvl = level(parent)
    reindent(child, lvl + 1, unit)
    kids = list(parent)
    if unit is not None:
        inner = "\n" + unit * (lvl + 1)
        if not kids:
            parent.text, child.tail = inner, "\n" + unit * lvl
        elif index == 0:
            child.tail, parent.text = parent.text, inner
        else:
            prev = kids[index - 1]
            child.tail, prev.tail = prev.tail, inner
    else:
        child.tail = None
    parent.insert(index, child)


def append(parent: Any, child: Any, unit: str | None) -> None:
    insert(parent, len(parent), child, unit)


def remove(el: Any) -> None:
    """Remove ``el`` and the indentation in front of it."""
    parent = el.getparent()
    index = parent.index(el)
    if index == 0:
        parent.text = el.tail
    else:
        parent[index - 1].tail = el.tail
    parent.remove(el)
    if len(parent) == 0 and not (parent.text or "").strip():
        parent.text = None


def replace(old: Any, new: Any, unit: str | None) -> None:
    """Put ``new`` where ``old`` is, at its indentation."""
    reindent(new, level(old), unit)
    new.tail = old.tail
    old.getparent().replace(old, new)


def serialize(tree: Any, original: bytes | None = None) -> str:
    """The document as text, with ``original``'s XML declaration if it had one, ending in a newline."""
    from lxml import etree

    # Top-level comments and processing instructions each go on their own line (lxml keeps no
    # whitespace between top-level nodes, and would glue them to the root).
    root = tree.getroot()
    parts = [tree.docinfo.doctype] if tree.docinfo.doctype else []
    parts += [etree.tostring(n, encoding="unicode", with_tail=False) for n in reversed(list(
        root.itersiblings(preceding=True)))]
    parts.append(etree.tostring(root, encoding="unicode", with_tail=False))
    parts += [etree.tostring(n, encoding="unicode", with_tail=False) for n in root.itersiblings()]
    text = "\n".join(parts)
    if original is not None:
        m = _DECL.match(original)
        if m:
            # The text is written as UTF-8: a declaration naming another encoding would lie.
            decl = m.group(1)
            enc = _ENCODING.search(decl)
            if enc and b"utf-8" not in enc.group(0).lower():
                decl = decl.replace(enc.group(0), b' encoding="UTF-8"')
            text = decl.decode("ascii", "replace") + "\n" + text
    return text if text.endswith("\n") else text + "\n"
