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
_WHERE = re.compile(r",? line \d+, column (\d+)$")


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


def _messages(log: Any) -> list[str]:
    msgs = list(dict.fromkeys(str(e.message) for e in log))
    specific = [m for m in msgs if not _GENERIC.match(m)]
    return specific or msgs


def _children(el: Any) -> list[Any]:
    return [c for c in el if isinstance(c.tag, str)]


def _variant(tree: Any, path: str, keep: int | None) -> Any:
    """A copy of the document where the element at ``path`` keeps only its child ``keep``."""
    t = copy.deepcopy(tree)
    target = t.xpath(path)[0]
    for i, c in enumerate(_children(target)):
        if i != keep:
            target.remove(c)
    return t


def _narrow(rng: Any, tree: Any, target: Any) -> list[Problem]:
    """The children of ``target`` that the schema rejects, each with its reason; [] if the
    culprits cannot be told apart (e.g. the element needs some children to be valid at all)."""
    kids = _children(target)
    path = tree.getpath(target)
    if not kids or not rng.validate(_variant(tree, path, None)):
        return []
    out = []
    for i, c in enumerate(kids):
        if rng.validate(_variant(tree, path, i)):
            continue
        context = _messages(rng.error_log)
        sub = element_schema(c.tag)
        if sub is None:
            reason = f"libvirt's schema does not allow <{c.tag}> in <{target.tag}>"
        elif not sub.validate(c):
            reason = "; ".join(_messages(sub.error_log))
        else:
            reason = f"valid on its own but not accepted in <{target.tag}> (" + "; ".join(context) + ")"
        out.append(Problem(c.sourceline, f"<{c.tag}>: {reason}"))
    return out


def check_domain(tree: Any, source: str = "<domain XML>") -> None:
    """Raise XmlError unless the document is valid against libvirt's domain schema."""
    rng = domain_schema()
    if rng.validate(tree):
        return
    log = list(rng.error_log)
    problems: list[Problem] = []
    for e in log:
        if e.path and _GENERIC.match(str(e.message)):
            try:
                found = tree.xpath(e.path)
            except etree.XPathError:
                found = []
            if found:
                problems += _narrow(rng, tree, found[0])
    if not problems:
        generic_only = all(_GENERIC.match(str(e.message)) or not e.line for e in log)
        for e in log:
            if e.line and (generic_only or not _GENERIC.match(str(e.message))):
                problems.append(Problem(e.line, str(e.message)))
        problems = problems or [Problem(None, "; ".join(_messages(log)) or "rejected by libvirt's schema")]
    raise XmlError(source, list(dict.fromkeys(problems)))
