"""Where results are written, so that no command can destroy an input or half-write an output.

Rules every writer in the package follows:
- ``check_output`` before any work: the output is not an input, nor inside or above one, is
  of the right kind (folder or file) and its location is writable.
- ``hold(path)``: a real file lock (the ``filelock`` package) on a hidden sibling
  ``.<name>.lock``; a second writer of the same path is refused with a message naming the
  holder (pid, host, command, start time). The kernel drops the lock when its process dies,
  so a killed run never leaves a stale lock.
- Output folders carry a marker file (``MARKER``) listing what the tool wrote, with each file's
  sha256. ``--overwrite`` replaces a folder only when every file in it is listed there with
  its content unchanged; it never deletes anything the tool did not write or a user edited.
- Finished files are written to a temporary name and renamed into place (``write_atomic``);
  whole folders are built in a hidden sibling and renamed into place (``install_folder``).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

MARKER = ".hydramix-output.json"


class OutputError(RuntimeError):
    """An output path that cannot be used as asked; nothing was written."""


class OutputExistsError(OutputError):
    pass


class LockedError(OutputError):
    pass


def positive(name: str, value, *, allow_none: bool = False):
    """``value`` if it is a positive integer (or None when allowed), else a ValueError naming ``name``."""
    if value is None and allow_none:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


# --- paths -------------------------------------------------------------------------------

def _overlap(out: Path, source: Path) -> str | None:
    if out == source:
        return "is"
    if source in out.parents:
        return "is inside"
    if out in source.parents:
        return "contains"
    return None


def check_output(out, *, inputs=(), kind: str = "folder") -> Path:
    """Refuse, before any work, an output that would overwrite, sit inside or contain an input,
    that exists as the wrong kind, or whose location is not writable. Returns the resolved path."""
    out = Path(out).expanduser().resolve()
    for source in inputs:
        if source is None:
            continue
        source = Path(source).expanduser().resolve()
        relation = _overlap(out, source)
        if relation:
            raise OutputError(f"the output {out} {relation} the input {source}: choose an output folder "
                              f"outside your inputs (e.g. next to them).")
    if kind == "folder" and out.exists() and not out.is_dir():
        raise OutputError(f"the output {out} is a file, not a folder: choose a folder path.")
    if kind == "file" and out.is_dir():
        raise OutputError(f"the output {out} is a folder; give a file path such as {out / 'result.json'}.")
    check_writable(out)
    return out


def check_writable(path: Path) -> None:
    """Create and delete a probe file where ``path`` will be written (the real test: permission
    bits say nothing for root, read-only mounts or full quotas)."""
    existing = path if path.is_dir() else path.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"cannot create {path}: {existing} is a file, not a folder.")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".hydramix-probe-"):
            pass
    except OSError as error:
        raise OutputError(f"cannot write {path}: {existing} is not writable ({error.strerror}). "
                          f"Choose another output location.") from None


def sibling(path: Path, suffix: str) -> Path:
    """The hidden sibling ``.<name><suffix>`` of ``path`` (same filesystem, so renames are atomic)."""
    return path.parent / f".{path.name}{suffix}"


# --- locks -------------------------------------------------------------------------------

_held: dict[str, int] = {}  # lock files this process holds -> nesting depth (one flock per process)


@contextmanager
def hold(path, *, what: str = "output"):
    """Hold the write lock of ``path`` for the block; refuse if another process holds it."""
    from filelock import FileLock, Timeout

    path = Path(path).resolve()
    lock_file = sibling(path, ".lock")
    key = str(lock_file)
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_file))
    holder_file = lock_file.with_name(lock_file.name + ".holder")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise LockedError(f"{path} is being written by another run ({_describe_holder(holder_file)}); "
                          f"wait for it to finish or stop it, or choose another {what}.") from None
    _held[key] = 1
    try:
        write_atomic(holder_file, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                              "command": " ".join(sys.argv), "since": time.strftime("%Y-%m-%d %H:%M:%S")}))
        yield
    finally:
        del _held[key]
        holder_file.unlink(missing_ok=True)
        lock.release()


def is_held(path) -> bool:
    """Whether another process holds the write lock of ``path`` now."""
    from filelock import FileLock, Timeout

    lock_file = sibling(Path(path).resolve(), ".lock")
    if str(lock_file) in _held:
        return False
    if not lock_file.exists():
        return False
    lock = FileLock(str(lock_file))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def _describe_holder(holder_file: Path) -> str:
    try:
        holder = json.loads(holder_file.read_text())
        return f"pid {holder['pid']} on {holder['host']} since {holder['since']}: {holder['command']}"
    except (OSError, ValueError, KeyError):
        return "holder unknown"


# --- files and folders -------------------------------------------------------------------

@contextmanager
def replacing(path):
    """Yield a unique temporary sibling of ``path`` to write; rename it to ``path`` when the block
    succeeds, delete it when it fails. Readers see the old file or the new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a file made by open() follows the umask
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask (read by setting it, so set back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes(path, data) -> None:
    """``Path.write_bytes``, but a failed write (a full disk) names the file it was writing."""
    try:
        Path(path).write_bytes(data)
    except OSError as error:
        if error.filename:
            raise
        raise OSError(error.errno, error.strerror, str(path)) from None


def write_atomic(path, text: str) -> None:
    with replacing(path) as tmp:
        write_bytes(tmp, text.encode())


def save_atomic(obj, path) -> None:
    """``torch.save`` through ``replacing``. The bytes are written by Python, which reports a full
    disk as the OSError it is (torch's own file writer says only 'unexpected pos')."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with replacing(path) as tmp:
        write_bytes(tmp, buffer.getbuffer())


def describe_os_error(error: OSError) -> str:
    """What went wrong with which file, and what to do, for errors of the file system."""
    where = f" {error.filename}" if error.filename else ""
    hints = {errno.ENOSPC: "The disk is full: free space there or choose another location; nothing half-written "
                           "was kept as a result.",
             errno.EDQUOT: "The disk quota is exhausted: free space or choose another location.",
             errno.EACCES: "Check the permissions of that path and the folders above it.",
             errno.EPERM: "Check the permissions of that path.",
             errno.EROFS: "The file system is read-only: choose another location."}
    return f"cannot access{where}: {error.strerror or error}. " + hints.get(error.errno, "Check that path and retry.")


def read_marker(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None


def digest(path: Path) -> str:
    """sha256 of a file's content (hashlib.file_digest needs Python 3.11)."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def write_marker(folder: Path, *, tool: str, files, **details) -> None:
    """Record which files in ``folder`` the tool wrote, each with the sha256 of its content (None
    for one not written yet): a file edited or replaced since is not the tool's any more."""
    identities = {name: digest(folder / name) if (folder / name).is_file() else None for name in sorted(files)}
    write_atomic(folder / MARKER, json.dumps({"tool": tool, "files": identities, **details}, indent=1) + "\n")


def _listed(marker: dict) -> dict:
    files = marker.get("files") or {}
    return files if isinstance(files, dict) else dict.fromkeys(files)  # a list: markers of earlier versions


def foreign_files(folder: Path) -> list[str]:
    """Files in ``folder`` that its marker does not list (all of them without a marker), or whose
    content differs from what the marker recorded. A temporary sibling left by ``replacing`` (a
    killed write) counts as its target."""
    marker = read_marker(folder) or {"files": {}}
    identities = _listed(marker)
    listed = set(identities) | {MARKER}

    def target(path: Path) -> str:
        name = path.name
        if name.startswith(".") and name.endswith(".tmp"):
            name = name[1:-4].rsplit(".", 1)[0]
        return (path.parent / name).relative_to(folder).as_posix()

    def changed(path: Path) -> bool:
        name = path.relative_to(folder).as_posix()
        return identities.get(name) is not None and digest(path) != identities[name]

    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if not p.is_dir() and (target(p) not in listed or changed(p)))


def claim_folder(out: Path, *, tool: str, overwrite: bool) -> str:
    """Decide what may happen to an existing output folder, before any work.

    Returns "new" (absent or empty), or "replace" (made by ``tool``, ``overwrite`` given, holds
    only files the tool wrote). Raises OutputExistsError otherwise; changes nothing.
    """
    if not out.exists() or not any(out.iterdir()):
        return "new"
    marker = read_marker(out)
    foreign = foreign_files(out)
    if marker is None or marker.get("tool") != tool or foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        made_by = (f"it was made by {marker['tool']}" if marker and marker.get("tool") != tool
                   else f"it holds files {tool} did not write or that were changed since ({shown})")
        raise OutputExistsError(f"{out} is not empty and {made_by}; --overwrite only replaces what {tool} wrote. "
                                f"Choose a new or empty folder.")
    if not overwrite:
        raise OutputExistsError(f"{out} already holds results of {tool}; pass --overwrite (overwrite=True) to "
                                f"replace them.")
    return "replace"


def remove_owned(folder: Path) -> None:
    """Delete a folder that ``claim_folder`` found to hold only the tool's own files."""
    if foreign_files(folder):  # checked again: a file may have appeared since the claim
        raise OutputExistsError(f"{folder} now holds files the tool did not write; nothing was deleted.")
    shutil.rmtree(folder)


def install_folder(built: Path, out: Path) -> None:
    """Move a finished folder ``built`` to ``out`` (absent, empty, or wholly the tool's own)."""
    if out.exists() and any(out.iterdir()):
        old = sibling(out, f".old-{os.getpid()}")
        os.replace(out, old)
        os.replace(built, out)
        remove_owned(old)
    else:
        os.replace(built, out)  # an empty folder is replaced in one rename
