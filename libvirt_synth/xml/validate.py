# SPDX-License-Identifier: Apache-2.0
"""Parse domain XML and check it against libvirt's own RELAX NG schema, with errors that say
where (file and line) and why.

libxml2 reports most schema errors inside ``<devices>`` as "Element domain failed to validate
content" on the ``<devices>`` line, which points nowhere useful. When it does, each child of the
reported element is tried alone to find the culprits, and each culprit is checked against the
schema's own definition of that element (``<define name="shmem">`` and so on) for a precise reason.
"""

from __future__ import annotations

import copy
import functools
import os
import pathlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lxml import etree

from libvirt_synth import errors

DEFAULT_SCHEMA_DIR = "/usr/share/libvirt/schemas"
SCHEMA_DIR_ENV = "LIBVIRT_SYNTH_SCHEMA_DIR"
DOMAIN_SCHEMA = "domain.rng"
_GENERIC = re.compile(r"^Element \S+ failed to validate content$")
_NOISE = re.compile(r"^(Invalid sequence in interleave|Extra element \S+ in interleave"
                    r"|Element \S+ has extra content: .*)$")
_EXTRA = re.compile(r"^(?:Extra element (\S+) in interleave|Element \S+ has extra content: (\S+))$")
_WHERE = re.compile(r",? line \d+, column (\d+)$")
_RNG_NS = "http://relaxng.org/ns/structure/1.0"


@dataclass(frozen=True)
class Problem:
    line: int | None
    reason: str

    def format(self, source: str) -> str:
        return f"{source}:{self.line}: {self.reason}" if self.line else f"{source}: {self.reason}"


class XmlError(errors.ValueError):
    """Domain XML that is malformed, not a domain, or rejected by libvirt's schema. ``problems``
    lists each (line, reason); the message has one ``source:line: reason`` line per problem."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(p.format(source) for p in self.problems))

    @property
    def line(self) -> int | None:
        return self.problems[0].line if self.problems else None

    @property
    def reason(self) -> str:
        return self.problems[0].reason if self.problems else ""


def schema_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get(SCHEMA_DIR_ENV) or DEFAULT_SCHEMA_DIR)


def parse(data: str | bytes, source: str = "<domain XML>") -> Any:
    """Text -> lxml ElementTree of a ``<domain>``, keeping comments and whitespace. Entities are
    not expanded and nothing is fetched from the network."""
    raw = data.encode() if isinstance(data, str) else data
    parser = etree.XMLParser(remove_blank_text=False, remove_comments=False, resolve_entities=False,
                             no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as e:
        msg = str(e.msg or e)
        m = _WHERE.search(msg)
        reason = _WHERE.sub("", msg) + (f" (column {m.group(1)})" if m else "")
        raise XmlError(source, [Problem(e.lineno or None, f"not well-formed XML: {reason}")]) from None
    if root.tag != "domain":
        raise XmlError(source, [Problem(root.sourceline, f"expected a <domain> element, got <{root.tag}>")])
    return root.getroottree()


@functools.cache
def domain_schema() -> Any:
    path = schema_dir() / DOMAIN_SCHEMA
    if not path.is_file():
        raise errors.NotFoundError(f"libvirt's domain schema {path} is not installed: apt-get install libvirt0 "
                                   f"(or point {SCHEMA_DIR_ENV} at a directory that has {DOMAIN_SCHEMA})")
    try:
        return etree.RelaxNG(file=str(path))
    except etree.RelaxNGParseError as e:
        raise errors.ValueError(f"cannot load libvirt's schema {path}: {e}") from None


@functools.cache
def element_schema(tag: str) -> Any | None:
    """The schema restricted to libvirt's definition named like ``tag``, or None if it has none."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", tag):
        return None
    grammar = (
        '<grammar xmlns="http://relaxng.org/ns/structure/1.0" '
        'datatypeLibrary="http://www.w3.org/2001/XMLSchema-datatypes">'
        f'<include href="{schema_dir() / DOMAIN_SCHEMA}"><start><ref name="{tag}"/></start></include>'
        "</grammar>"
    )
    try:
        return etree.RelaxNG(etree.fromstring(grammar))
    except etree.RelaxNGParseError:
        return None


def _noise(message: str) -> bool:
    return bool(_GENERIC.match(message) or _NOISE.match(message))


def _messages(log: Any) -> list[str]:
    msgs = list(dict.fromkeys(str(e.message) for e in log))
    specific = [m for m in msgs if not _noise(m)]
    named = [m for m in msgs if not _GENERIC.match(m)]
    return specific or named or msgs


@functools.cache
def known_elements() -> frozenset[str]:
    """Every element name libvirt's schemas define (to tell a typo from a misplaced element)."""
    names: set[str] = set()
    for path in schema_dir().glob("*.rng"):
        try:
            doc = etree.parse(str(path))
        except etree.XMLSyntaxError:
            continue
        names |= {str(el.get("name")) for el in doc.iter(f"{{{_RNG_NS}}}element") if el.get("name")}
    return frozenset(names)


def _children(el: Any) -> list[Any]:
    return [c for c in el if isinstance(c.tag, str)]


def _variant(tree: Any, path: str, keep: int | None = None, drop: int | None = None) -> Any:
    """A copy of the document where the element at ``path`` keeps only its child ``keep`` (None:
    none of them), or loses only its child ``drop``."""
    t = copy.deepcopy(tree)
    target = t.xpath(path)[0]
    for i, c in enumerate(_children(target)):
        if (i == drop) if drop is not None else (i != keep):
            target.remove(c)
    return t


def _reason(c: Any, parent: Any, context: list[str]) -> str:
    sub = element_schema(c.tag)
    if sub is not None and not sub.validate(c):
        return f"<{c.tag}>: " + "; ".join(_messages(sub.error_log))
    if c.tag not in known_elements():
        return f"<{c.tag}>: libvirt's schema has no such element (in <{parent.tag}> or anywhere)"
    if sub is None:
        return (f"<{c.tag}>: not accepted in <{parent.tag}>: check its value, attributes and children, and that "
                f"it belongs here ({'; '.join(context)})")
    return f"<{c.tag}>: valid on its own but not accepted in <{parent.tag}> ({'; '.join(context)})"


def _narrow(rng: Any, tree: Any, target: Any, context: list[str]) -> list[Problem]:
    """The children of ``target`` that the schema rejects, each with its reason; [] if they
    cannot be told apart."""
    kids = _children(target)
    path = tree.getpath(target)
    if not kids:
        return []
    out = []
    if rng.validate(_variant(tree, path)):
        # The element is fine empty: try each child alone.
        for i, c in enumerate(kids):
            if not rng.validate(_variant(tree, path, keep=i)):
                out.append(Problem(c.sourceline, _reason(c, target, _messages(rng.error_log))))
    else:
        # It needs some children (<domain> needs <name>...): a child whose removal fixes it.
        for i, c in enumerate(kids):
            if rng.validate(_variant(tree, path, drop=i)):
                out.append(Problem(c.sourceline, _reason(c, target, context)))
    return out


def check_domain(tree: Any, source: str = "<domain XML>") -> None:
    """Raise XmlError unless the document is valid against libvirt's domain schema."""
    rng = domain_schema()
    if rng.validate(tree):
        return
    log = list(rng.error_log)
    context = _messages(log)
    problems: list[Problem] = []
    for e in log:
        if e.path and _GENERIC.match(str(e.message)):
            try:
                found = tree.xpath(e.path)
            except etree.XPathError:
                found = []
            if found:
                problems += _narrow(rng, tree, found[0], context)
    if not problems:
        problems = [Problem(e.line, str(e.message)) for e in log if e.line and not _noise(str(e.message))]
    if not problems:
        # Only libxml2's generic lines: place each "Extra element X" on the first <X>.
        for e in log:
            m = _EXTRA.match(str(e.message))
            el = next(tree.getroot().iter(m.group(1) or m.group(2)), None) if m else None
            if el is not None:
                problems.append(Problem(el.sourceline, _reason(el, el.getparent(), context)))
    if not problems:
        problems = [Problem(e.line or None, str(e.message)) for e in log] or [Problem(None, "rejected by libvirt's "
                                                                                        "schema")]
    raise XmlError(source, list(dict.fromkeys(problems)))
