"""The unpacked data cache: a stamp per folder that says which archives it was unpacked from and what each file was.

:mod:`alexnet_lib.data` checks the downloaded (or bundled) ``.gz`` archives against their MD5 and unpacks them once
into the cache folder (``$ALEXNET_CACHE``). The stamp ``SOURCE.json`` written then records, for every unpacked file,
its size, modification time and MD5, plus a checksum of the stamp itself. Every later load re-checks cheaply -- the
stamp's checksum, each file's size and time, and the MD5 of the small files (the labels) -- and a cache that fails
is unpacked again from the verified archives, with a one-line note, instead of being trusted.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .outputs import atomic_write_text, os_reason

__all__ = ["STAMP", "entry", "write_stamp", "stamp_problem", "not_writable"]

STAMP = "SOURCE.json"
SMALL = 1 << 20  # files up to this size are re-hashed on every load (the label files: 60 kB and 10 kB)


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def entry(path: Path, md5: str) -> dict:
    """What the stamp records for one unpacked file (``md5``: of its content, computed while unpacking)."""
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "md5": md5}


def _checksum(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def write_stamp(folder: Path, source: dict, files: dict[str, dict]) -> None:
    """Write the stamp of ``folder``: the archives' MD5s (``source``) and one :func:`entry` per unpacked file."""
    body = {"source": source, "files": files}
    atomic_write_text(folder / STAMP, json.dumps({**body, "checksum": _checksum(body)}, indent=1) + "\n")


def stamp_problem(folder: Path, source: dict) -> str | None:
    """``None`` if ``folder`` holds an intact cache unpacked from the archives ``source``; ``""`` if it was never
    built (no stamp); otherwise what is wrong, for the note printed before it is unpacked again."""
    path = folder / STAMP
    if not path.exists():
        return ""
    try:
        stamp = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(stamp, dict) and "checksum" not in stamp and "files" not in stamp:
            return ""  # written by an older version (the archives' MD5s only): unpacked again, without a note
        body = {"source": stamp["source"], "files": stamp["files"]}
        intact = stamp["checksum"] == _checksum(body)
    except (OSError, ValueError, KeyError, TypeError):
        intact = False
    if not intact:
        return f"the cache stamp {path} is damaged"
    if body["source"] != source:
        return f"the cache {folder} was unpacked from other archives"
    for name, want in body["files"].items():
        f = folder / name
        if not f.is_file():
            return f"the cached file {f} is missing"
        st = f.stat()
        if st.st_size != want["size"]:
            return f"the cached file {f} has {st.st_size:,} bytes, {want['size']:,} when it was unpacked"
        if st.st_mtime_ns != want["mtime_ns"]:
            return f"the cached file {f} was changed after it was unpacked"
        if st.st_size <= SMALL and _md5(f) != want["md5"]:
            return f"the cached file {f} does not match its MD5 from when it was unpacked"
    return None


def not_writable(cache_root: Path, env_var: str, e: OSError) -> str:
    """The one-line message for a cache folder that cannot be created or written."""
    return (f"the data cache {cache_root} cannot be written ({os_reason(e)}: {e.filename or cache_root}); set "
            f"{env_var} to a folder you can write, e.g. export {env_var}=$HOME/.cache/alexnet_lib")
