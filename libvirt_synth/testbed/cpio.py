# SPDX-License-Identifier: Apache-2.0
"""A newc cpio archive (what the kernel unpacks as an initramfs), written here so that the same
entries give the same bytes every time: sorted, mtime 0, owner root; and gzip without a timestamp."""

from __future__ import annotations

import gzip
import io
import os
import stat


class Cpio:
    def __init__(self) -> None:
        self.entries: dict[str, tuple[int, bytes, int]] = {}  # path -> (mode, data, rdev)

    def dir(self, path: str) -> None:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            self.entries.setdefault("/".join(parts[:i]), (stat.S_IFDIR | 0o755, b"", 0))

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        if "/" in path.strip("/"):
            self.dir(os.path.dirname(path.strip("/")))
        self.entries[path.strip("/")] = (stat.S_IFREG | mode, data, 0)

    def symlink(self, path: str, target: str) -> None:
        self.entries[path.strip("/")] = (stat.S_IFLNK | 0o777, target.encode(), 0)

    def chardev(self, path: str, major: int, minor: int, mode: int = 0o600) -> None:
        self.entries[path.strip("/")] = (stat.S_IFCHR | mode, b"", os.makedev(major, minor))

    def bytes(self) -> bytes:
        out = io.BytesIO()

        def record(ino: int, name: str, mode: int, data: bytes, rdev: int) -> None:
            nlink = 2 if stat.S_ISDIR(mode) else 1
            fields = (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, os.major(rdev), os.minor(rdev), len(name) + 1, 0)
            out.write(b"070701" + "".join(f"{v:08x}" for v in fields).encode() + name.encode() + b"\0")
            out.write(b"\0" * (-out.tell() % 4))
            out.write(data)
            out.write(b"\0" * (-out.tell() % 4))

        for ino, name in enumerate(sorted(self.entries), start=1):
            mode, data, rdev = self.entries[name]
            record(ino, name, mode, data, rdev)
        record(0, "TRAILER!!!", 0, b"", 0)
        return out.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=6, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()
