"""Faults of the machine, each as one sentence: a full disk, a read-only folder, an output path that is not
a regular file (a folder or a FIFO, which would hang a reader).

* :func:`check_regular_or_absent`: called before a results file is read or appended to.
* :func:`os_error_sentence`: the sentence for an ``OSError`` raised while writing results (the CLI prints
  it instead of a traceback; :func:`earmark.evaluate.append_row` raises it as a
  :class:`~earmark.errors.DataError` saying what was kept).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .errors import DataError

_WHY = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission was denied",
    errno.EPERM: "the operation is not permitted",
    errno.EISDIR: "a folder is in the way",
    errno.ENOTDIR: "a file is in the way of a folder",
    errno.EFBIG: "the file grew past the size limit",
    errno.EIO: "the disk reported an input/output error",
}


def check_regular_or_absent(path: Path, what: str = "The results file") -> None:
    """Refuse a path that exists but is not a regular file (a folder, FIFO, socket or device).

    Raises:
        DataError: one sentence naming what is there.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except (OSError, RuntimeError) as exc:
        raise DataError(f"{what} {path} cannot be read ({os_error_sentence(exc) if isinstance(exc, OSError) else exc}).") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "not a regular file"
        raise DataError(f"{what} {path} is {kind}, not a file; remove it or choose another output folder.")


def os_error_sentence(exc: OSError) -> str:
    """'the disk is full (errno 28) writing /x/results.jsonl'."""
    why = _WHY.get(exc.errno or -1, exc.strerror or type(exc).__name__)
    where = f" writing {exc.filename}" if getattr(exc, "filename", None) else ""
    return f"{why} (errno {exc.errno}){where}"


__all__ = ["check_regular_or_absent", "os_error_sentence"]
