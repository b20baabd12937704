"""The click spool: counted clicks appended to local files, moved into the database in batches.

``CLICK_BUFFER=spool``. The redirect appends one line (the click as JSON) to its process's spool file with a
single ``write`` and answers once the kernel has it: a web process killed the next moment loses nothing (the
line is in the file), and no other service is on the hot path — Redis may be down, and there is no network
round trip. ``manage.py flush_clicks --loop`` (one per host, beside the web servers) moves the lines into the
database with the same idempotent batch write as every other path (``tracking.click_writes.write_clicks``),
uniqueness still decided by the database.

Files, in ``CLICK_SPOOL_DIR`` (names sort by creation time)::

    <ns>-<host>-<pid>.tmp     being created (ignored)
    <ns>-<host>-<pid>.open    being appended to; its writer holds an exclusive flock on it
    <ns>-<host>-<pid>.closed  rotated by its writer (``ROTATE_SECONDS``, ``ROTATE_BYTES``)

A writer takes the flock before the file gets its ``.open`` name and keeps it until it renames the file
``.closed`` and closes it; the kernel drops the lock when the process dies. So a flusher that can take the
lock of an ``.open`` file knows nothing will be appended to it any more. Whoever flushes holds ``.flush.lock``
for the batch, so two flushers (the daemon, and the events API looking for a fresh click) never handle the
same lines at once. The flusher reads from the offset it recorded in ``offsets.json``, writes the complete
lines, and after the commit records the new offsets and deletes the finished files. A flusher that dies before
that re-reads the lines next time: they are skipped by their click id (the primary key), counted nowhere
twice. Offsets are kept under the file's name without its suffix (``<ns>-<host>-<pid>``), which rotation does
not change: a file read while ``.open`` and then rotated ``.closed`` is read on from where the last flush
stopped, not again from its start.

What it does not cover: a crash of the machine itself before the kernel wrote the page cache to disk (the same
as Redis without an fsync'd AOF). A line cut short (a ``write`` interrupted by a full disk) is logged and
dropped; the redirect then writes that click directly.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

OPEN, CLOSED, TMP = ".open", ".closed", ".tmp"
LOCK_NAME = ".flush.lock"
OFFSETS_NAME = "offsets.json"
# A writer starts a new file after this long or this size (checked when it appends), so that
# flushed files can be deleted and one file never grows without bound.
ROTATE_SECONDS = 10.0
ROTATE_BYTES = 8 * 1024 * 1024
# How long a flush waits for another flusher's batch (the daemon's, or a sign-up's) to finish.
LOCK_WAIT_SECONDS = 2.0

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def spool_dir() -> Path:
    return Path(settings.CLICK_SPOOL_DIR)


# --- the line format -----------------------------------------------------------------------


def encode(click) -> bytes:
    """One line: ``[id hex, link, partner, visitor, µs since the epoch, ip hash, UA, referer]``,
    followed by ``sub1, sub2, sub3, country`` when any of them is set (lines without them, written
    before they existed or by a click without them, read as empty)."""
    micros = (click.created_at - _EPOCH) // timedelta(microseconds=1)
    row = [
        click.id.hex,
        click.link_id,
        click.partner_id,
        click.visitor_id,
        micros,
        click.ip_hash,
        click.user_agent,
        click.referer,
    ]
    if click.sub1 or click.sub2 or click.sub3 or click.country:
        row += [click.sub1, click.sub2, click.sub3, click.country]
    return (json.dumps(row, separators=(",", ":")) + "\n").encode()


def decode(line: bytes):
    """One line back into a click. Raises ValueError (or TypeError) for a malformed line."""
    from tracking.click_writes import ClickData

    return _click(json.loads(line), ClickData)


def decode_many(lines: list[bytes]) -> list:
    """The clicks of these lines, the malformed ones logged and dropped. The lines are parsed
    as one JSON array (a third of the cost of parsing them one by one); if that fails or does
    not give one row per line, one by one."""
    from tracking.click_writes import ClickData

    try:
        rows = json.loads(b"[" + b",".join(lines) + b"]")
    except ValueError:
        rows = None
    clicks = []
    if rows is not None and len(rows) == len(lines):
        for line, row in zip(lines, rows, strict=True):
            try:
                clicks.append(_click(row, ClickData))
            except (ValueError, TypeError):
                logger.error("Dropping a malformed line of the click spool: %r", line[:200])
        return clicks
    for line in lines:
        try:
            clicks.append(decode(line))
        except (ValueError, TypeError, UnicodeDecodeError):
            logger.error("Dropping a malformed line of the click spool: %r", line[:200])
    return clicks


def _click(row, click_class):
    if len(row) == 12:
        click_id, link_id, partner_id, visitor_id, micros, ip_hash, user_agent, referer, *extra = row
    else:
        click_id, link_id, partner_id, visitor_id, micros, ip_hash, user_agent, referer = row
        extra = ("", "", "", "")
    sub1, sub2, sub3, country = (str(value) for value in extra)
    if not isinstance(visitor_id, str) or not visitor_id or len(visitor_id) > 64:
        raise ValueError("bad visitor id")
    return click_class(
        id=uuid.UUID(hex=click_id),
        link_id=int(link_id),
        partner_id=int(partner_id),
        visitor_id=visitor_id,
        created_at=_EPOCH + timedelta(microseconds=int(micros)),
        ip_hash=str(ip_hash)[:64],
        user_agent=str(user_agent)[:512],
        referer=str(referer)[:1024],
        sub1=sub1[:100],
        sub2=sub2[:100],
        sub3=sub3[:100],
        country=country[:2],
    )


# --- writing (the redirect) ----------------------------------------------------------------


@dataclass
class _File:
    fd: int
    path: Path
    pid: int
    opened: float
    directory: object  # settings.CLICK_SPOOL_DIR when opened (tests change it)
    size: int = 0


_lock = threading.Lock()  # the threads of one worker share its file
_current: _File | None = None


def append(click) -> None:
    """Append one click to this process's spool file; ``OSError`` if not all written (then written directly)."""
    global _current
    line = encode(click)
    with _lock:
        current = _current
        if current is None or current.pid != os.getpid():  # first click, or a forked child
            current = _current = _open_file()
        elif (
            current.size >= ROTATE_BYTES
            or time.monotonic() - current.opened >= ROTATE_SECONDS
            or current.directory != settings.CLICK_SPOOL_DIR
        ):
            _current = None
            _close_file(current)
            current = _current = _open_file()
        try:
            written = os.write(current.fd, line)
        except OSError:
            _current = None
            _close_file(current)
            raise
        current.size += written
        if written != len(line):
            # A partial line (full disk): the flusher drops it; start a clean file next time.
            _current = None
            _close_file(current)
            raise OSError(errno.ENOSPC, f"short write to the click spool ({written} of {len(line)} bytes)")


def _open_file() -> _File:
    setting = settings.CLICK_SPOOL_DIR
    directory = Path(setting)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns():020d}-{socket.gethostname()}-{os.getpid()}"
    tmp = directory / f"{name}{TMP}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held for the file's life: "its writer is alive"
        path = directory / f"{name}{OPEN}"
        os.rename(tmp, path)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return _File(fd=fd, path=path, pid=os.getpid(), opened=time.monotonic(), directory=setting)


def _close_file(current: _File) -> None:
    """Rotate: ``.closed`` first (while the lock still says the writer is alive), then close."""
    if current.pid != os.getpid():  # inherited from the parent: not ours to rename or close
        return
    try:
        os.rename(current.path, current.path.with_suffix(CLOSED))
    except OSError:
        logger.warning("Could not rotate click spool file %s.", current.path, exc_info=True)
    finally:
        os.close(current.fd)


def close_current() -> None:
    """Rotate this process's file now (tests; a worker shutting down cleanly)."""
    global _current
    with _lock:
        current, _current = _current, None
        if current is not None:
            _close_file(current)


# --- flushing ------------------------------------------------------------------------------


@contextlib.contextmanager
def _flush_lock(directory: Path, *, wait_seconds: float | None) -> Iterator[bool]:
    """Hold ``.flush.lock``: yields False if not had within ``wait_seconds`` (None: as long as it takes)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        if wait_seconds is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            deadline = time.monotonic() + wait_seconds
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        yield False
                        return
                    time.sleep(0.01)
        yield True
    finally:
        os.close(fd)  # releases the lock


def _writer_gone(path: Path) -> bool | None:
    """For an ``.open`` file: True when no process holds its lock (the writer died), False
    while it does, None when the file is gone (rotated or deleted meanwhile)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def _offset_key(path: Path) -> str:
    """A file's key in ``offsets.json``: its name without ``.open``/``.closed`` (kept across rotation)."""
    return path.stem


def _load_offsets(directory: Path) -> dict[str, int]:
    try:
        data = json.loads((directory / OFFSETS_NAME).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _save_offsets(directory: Path, offsets: dict[str, int]) -> None:
    tmp = directory / f"{OFFSETS_NAME}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(offsets, sort_keys=True))
    os.replace(tmp, directory / OFFSETS_NAME)


@dataclass
class _Taken:
    name: str
    key: str  # _offset_key
    end: int  # offset after the last line taken
    finished: bool  # nothing more will come: delete the file once its lines are committed


def _spool_files(directory: Path) -> list[Path]:
    try:
        entries = [p for p in directory.iterdir() if p.suffix in (OPEN, CLOSED)]
    except FileNotFoundError:
        return []
    return sorted(entries, key=lambda p: p.name)


def flush_spool(max_lines: int, *, wait_seconds: float | None = LOCK_WAIT_SECONDS) -> int:
    """Move up to ``max_lines`` spooled clicks into the database; return how many lines were
    handled (0: nothing waiting, or the lock not had within ``wait_seconds``, None: no limit).
    The limit keeps a sign-up from waiting on a flusher that is stuck (on a database lock, say)."""
    from tracking.click_writes import write_buffered_clicks
    from tracking.clicks import drop_clicks_of_deleted_links

    directory = spool_dir()
    with _flush_lock(directory, wait_seconds=wait_seconds) as locked:
        if not locked:
            logger.warning(
                "Click spool busy (another flusher holds it) for %.1f s; not flushed this time.", wait_seconds
            )
            return 0
        offsets = _load_offsets(directory)
        taken: list[_Taken] = []
        lines: list[bytes] = []
        for path in _spool_files(directory):
            if len(lines) >= max_lines:
                break
            finished = path.suffix == CLOSED or _writer_gone(path)
            if finished is None:
                continue
            start = offsets.get(_offset_key(path), 0)
            try:
                with path.open("rb") as handle:
                    handle.seek(start)
                    data = handle.read()
            except FileNotFoundError:
                continue
            cut = data.rfind(b"\n") + 1  # complete lines only; a line being written waits
            file_lines, tail = data[:cut].split(b"\n")[:-1], data[cut:]
            room = max_lines - len(lines)
            if len(file_lines) > room:
                kept = file_lines[:room]
                lines += kept
                taken.append(
                    _Taken(path.name, _offset_key(path), start + sum(len(line) + 1 for line in kept), finished=False)
                )
                break
            lines += file_lines
            if finished and tail:
                logger.error("Dropping a cut-off line at the end of click spool file %s.", path.name)
            end = start + len(data) - (0 if finished else len(tail))
            taken.append(_Taken(path.name, _offset_key(path), end, bool(finished)))

        clicks = decode_many([line for line in lines if line.strip()])
        with transaction.atomic():
            transaction.on_commit(lambda: _finish(directory, taken))
            write_buffered_clicks(drop_clicks_of_deleted_links(clicks))
        return len(lines)


def _finish(directory: Path, taken: list[_Taken]) -> None:
    """After the commit: record how far each file was read, delete the finished ones."""
    if not taken:
        return
    offsets = _load_offsets(directory)
    for item in taken:
        if item.finished:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(directory / item.name)
            offsets.pop(item.key, None)
        else:
            offsets[item.key] = item.end
    present = {_offset_key(p) for p in _spool_files(directory)}
    _save_offsets(directory, {name: end for name, end in offsets.items() if name in present})


def files_left() -> bool:
    """Whether any spool file is left (being written, or not flushed and deleted yet)."""
    return bool(_spool_files(spool_dir()))


def pending_bytes() -> int:
    """Bytes in the spool not yet flushed (the bench's drain check, monitoring)."""
    directory = spool_dir()
    offsets = _load_offsets(directory)
    total = 0
    for path in _spool_files(directory):
        with contextlib.suppress(FileNotFoundError):
            total += max(0, path.stat().st_size - offsets.get(_offset_key(path), 0))
    return total
