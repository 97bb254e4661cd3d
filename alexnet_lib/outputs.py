"""A run's output files: written whole or not at all, by one run at a time, with nothing left behind.

* :func:`atomic_write_text`, :func:`save_json`, :func:`atomic_torch_save` write through a temporary file
  ``.NAME.<random>.tmp`` in the target's folder and a rename, so a reader (or a later ``--resume``) never sees half a
  file; the temporary file is removed on every exit Python sees (an exception, Ctrl-C, SIGTERM). A symbolic link is
  written through: the file it points to is replaced and the link stays a link.
* :func:`output_lock` takes a lock file ``.NAME.lock`` beside every output, naming the process that holds it (pid,
  host, start time, command); a second run on the same files is refused with that name. A lock left by a process
  that no longer runs (``kill -9``, a power cut) is taken over with a note, and the ``.NAME.*.tmp`` files such a run
  left are removed then.
* :func:`signals_deferred`: SIGINT/SIGTERM arriving while a checkpoint and its history are written take effect when
  both are written, so an interrupted run never reports a checkpoint it did not finish.
"""
from __future__ import annotations

import datetime
import errno
import glob
import json
import os
import signal
import socket
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

__all__ = ["OutputBusy", "real_target", "atomic_write_bytes", "atomic_write_text", "save_json", "load_json",
           "atomic_torch_save", "atomic_copy", "file_lock", "stale_temps", "output_lock", "signals_deferred",
           "os_reason", "SHARE_ENV"]

#: the folder, for the length of one build of the book or one test run, where the zh and en pages share one
#: measurement (:func:`.prose.shared`) and a finished run's weights (:func:`.history_cache.kept_weights`)
SHARE_ENV = "ALEXNET_SHARE"


class OutputBusy(RuntimeError):
    """Another running process holds the lock on an output file; the message names it."""


def real_target(path: str | os.PathLike) -> Path:
    """The file a write to ``path`` replaces: the target of a symbolic link (so the link stays a link)."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def os_reason(e: OSError) -> str:
    """A short reason for a failed write, in the words a reader would search for."""
    return {errno.EROFS: "the file system is read-only", errno.ENOSPC: "no space left on the device",
            errno.EDQUOT: "the disk quota is used up", errno.EACCES: "permission denied",
            errno.EPERM: "permission denied", errno.ENOENT: "the folder does not exist and cannot be created there",
            errno.ENOTDIR: "a part of the path is a file, not a folder",
            errno.EISDIR: "it is a folder"}.get(e.errno, e.strerror or str(e))


@contextmanager
def _temp_beside(path: Path) -> Iterator[tuple[int, str]]:
    """A new temporary file next to ``path`` (same folder, so the final rename is atomic), removed unless renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        yield fd, tmp
    finally:
        Path(tmp).unlink(missing_ok=True)  # a no-op after the rename


def _mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask  # mkstemp makes the file private; an output is an ordinary file


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: a kill never leaves half a file."""
    path = real_target(path)
    with _temp_beside(path) as (fd, tmp):
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode())
        os.replace(tmp, path)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename."""
    atomic_write_bytes(path, text.encode("utf-8"))


def file_lock(path: str | os.PathLike):
    """``path`` (a lock file) opened and locked exclusively; closing it releases the lock. Where ``fcntl`` is
    missing (Windows) it is only opened: two racing processes then both compute, and atomic writes keep what they
    write whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "a")
    try:
        import fcntl
    except ImportError:
        return f
    fcntl.flock(f, fcntl.LOCK_EX)
    return f


def save_json(obj: Any, path: str | os.PathLike) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, ensure_ascii=False) + "\n")


def load_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through a temporary file and a rename."""
    import torch

    path = real_target(path)
    with _temp_beside(path) as (fd, tmp):
        os.close(fd)
        torch.save(obj, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, _mode())
        os.replace(tmp, path)


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy ``src`` to ``dst`` through a temporary file beside it and a rename, so a reader never sees half of it."""
    import shutil

    dst = real_target(dst)
    with _temp_beside(dst) as (fd, tmp):
        os.close(fd)
        shutil.copyfile(src, tmp)
        os.chmod(tmp, _mode())
        os.replace(tmp, dst)


def stale_temps(path: str | os.PathLike) -> list[Path]:
    """The ``.NAME.*.tmp`` files beside ``path``: what a killed write left (only call while holding its lock)."""
    path = real_target(path)
    return sorted(Path(p) for p in glob.glob(os.path.join(glob.escape(str(path.parent)),
                                                          f".{glob.escape(path.name)}.*.tmp")))


def _start_time(pid: int) -> str | None:
    """The kernel's start time of process ``pid`` (Linux), so a reused pid is not mistaken for the lock's owner."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(info: dict) -> bool:
    if info.get("host") != socket.gethostname():
        return True  # cannot tell for another machine: assume it runs
    pid = int(info.get("pid", 0))
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    started = _start_time(pid)
    return started is None or info.get("proc_start") in (None, started)


def _describe(info: dict) -> str:
    return (f"pid {info.get('pid', '?')} on {info.get('host', '?')}, started {info.get('started', '?')}"
            + (f" ({info['command']})" if info.get("command") else ""))


def _read_lock(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}


def _my_info() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "proc_start": _start_time(os.getpid()),
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else ""}


def _busy(target: Path, lock: Path, info: dict) -> OutputBusy:
    return OutputBusy(f"{target} is being written by another run ({_describe(info)}); wait for it to finish or stop "
                      f"it, or write to another file. If that process is gone for sure, delete {lock}.")


def _acquire(target: Path, note) -> tuple[Path, int | None]:
    lock = target.parent / f".{target.name}.lock"
    try:
        import fcntl
    except ImportError:  # Windows: an exclusive create, and the pid check for stale locks
        fcntl = None
    while True:
        if fcntl is None:
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                info = _read_lock(lock)
                if _alive(info):
                    raise _busy(target, lock, info) from None
                lock.unlink(missing_ok=True)
                note(f"note: took over the lock {lock} of {_describe(info)}, which no longer runs")
                continue
            old = {}
        else:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise _busy(target, lock, _read_lock(lock)) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(lock).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the previous holder removed the file between our open and our lock: take the new one
                os.close(fd)
                continue
            old = _read_lock(lock)
            if old:  # the file survived its process (kill -9): the kernel dropped that process's lock
                note(f"note: took over the lock {lock} of {_describe(old)}, which no longer runs")
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(_my_info()).encode())
        os.fsync(fd)
        return lock, fd


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


_HELD: set[str] = set()  # outputs this process holds locks on (an inner output_lock for them is a no-op)


@contextmanager
def output_lock(*paths: str | os.PathLike | None, note=_note) -> Iterator[None]:
    """Hold ``.NAME.lock`` beside each output path (``None`` entries are skipped) while the block runs.

    Raises :class:`OutputBusy` naming the other process if one holds a lock (paths this process already holds are
    passed over, so the command line and the training loop can both take them); removes the ``.NAME.*.tmp`` files that a
    killed run left (with a note); releases and deletes the locks on every exit Python sees. The folders must exist
    (see :func:`alexnet_lib.validate.check_outputs`).
    """
    targets = sorted({os.path.realpath(real_target(p)) for p in paths if p is not None} - _HELD)
    held: list[tuple[Path, int | None]] = []
    try:
        for t in targets:
            held.append(_acquire(Path(t), note))
            _HELD.add(t)
        for t in targets:
            stale = stale_temps(t)
            for p in stale:
                p.unlink(missing_ok=True)
            if stale:
                note(f"note: removed {len(stale)} temporary file(s) that an earlier, killed run left beside {t}: "
                     + ", ".join(p.name for p in stale))
        yield
    finally:
        for (lock, fd), t in zip(reversed(held), reversed(targets[:len(held)])):
            lock.unlink(missing_ok=True)  # while still holding it: a waiting process re-checks the inode
            if fd is not None:
                os.close(fd)
            _HELD.discard(t)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM that arrive inside the block take effect when it ends (with their own handler).

    Used around writing a checkpoint and its history, so that these two are written whole and together, and a
    message printed on interruption can say exactly which epochs are saved.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    sigs = [signal.SIGINT, signal.SIGTERM]
    old = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in sigs}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if pending:
        handler = old[pending[0]]
        if callable(handler):
            handler(pending[0], None)
        elif handler == signal.SIG_DFL:
            signal.raise_signal(pending[0])
