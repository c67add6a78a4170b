"""Output claims: runs that share an output folder split the work through lock files
(``.<name>.tdrdenoise.lock``, created exclusively, holding ``tdrdenoise <pid>@<host>``);
a lock whose writer is provably gone, or older than ``max_age``, is broken (``files.py``).
"""
import contextlib
import hashlib
import os
import tempfile

from .files import (LOCK_SUFFIX, NAME_MAX, OWNER_RE, STALE_AFTER, OutputClaimedError,
                    break_stale_lock, lock_temp_prefix, lock_text, read_owner, shortened,
                    unwritable_error)

__all__ = ["claim_output"]


def _lock_path(path):
    """``.<name>.tdrdenoise.lock`` beside ``path``; for a name too long for that, its
    beginning and a hash of the whole name (the same for every run)."""
    path = os.fspath(path)
    base = os.path.basename(path)
    name = f".{base}{LOCK_SUFFIX}"
    if len(os.fsencode(name)) > NAME_MAX:
        digest = hashlib.sha256(os.fsencode(base)).hexdigest()[:16]
        room = NAME_MAX - len(LOCK_SUFFIX) - len(digest) - 2
        name = f".{shortened(base, room)}.{digest}{LOCK_SUFFIX}"
    return os.path.join(os.path.dirname(path), name)


def _describe_owner(lock):
    owner = read_owner(lock)
    match = OWNER_RE.match(owner or "")
    if match is None:
        if owner:
            return f"another program (the lock {lock} is not tdrdenoise's; remove it if " \
                   "nothing uses it)"
        return "another run"
    return f"another run (pid {match['pid']} on {match['host'] or 'an unnamed host'})"


@contextlib.contextmanager
def claim_output(path, max_age=STALE_AFTER):
    """Claim the right to write ``path`` for the duration of a block.

    The claim is a lock file ``.<name>.tdrdenoise.lock`` beside ``path``, created
    exclusively with its content ``tdrdenoise <pid>@<host>`` (a hard link from a
    temporary file, atomic on local and NFS file systems; ``O_CREAT | O_EXCL`` where
    there are no hard links); it is removed when the block ends. Two runs sharing an output
    folder thus never work on the same file: the second gets `OutputClaimedError`.
    The lock of a process that no longer runs on this machine, or of any machine and
    older than ``max_age``, is stale: it is removed and the claim taken. A lock file
    of that name whose content is not tdrdenoise's is never removed.

    Parameters
    ----------
    path : str or path-like
        The file about to be written.
    max_age : float, optional
        Age in seconds after which a lock is stale whoever holds it (24 hours).

    Yields
    ------
    str
        The lock file.

    Raises
    ------
    OutputClaimedError
        If another live run holds the claim (a subclass of `FileExistsError`).

    Examples
    --------
    >>> import os, tempfile
    >>> from tdrdenoise.utils import OutputClaimedError, claim_output
    >>> path = os.path.join(tempfile.mkdtemp(), "out.fits")
    >>> with claim_output(path):
    ...     try:
    ...         with claim_output(path):
    ...             pass
    ...     except OutputClaimedError as exc:
    ...         print("second claim refused")
    second claim refused
    """
    lock = _lock_path(path)
    for _ in range(3):
        try:
            _create_lock(lock, os.fspath(path))
        except FileExistsError:
            if break_stale_lock(lock, max_age):
                continue
            raise OutputClaimedError(f"{os.fspath(path)} is being written by "
                                     f"{_describe_owner(lock)}") from None
        break
    else:
        raise OutputClaimedError(f"{os.fspath(path)} is being claimed by other runs")
    try:
        yield lock
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)


def _create_lock(lock, target=None):
    """Create ``lock`` holding our mark and owner, exclusively; FileExistsError if it
    exists. The content is written first, to a temporary file hard-linked to ``lock``,
    so that a lock is never seen empty (except where there are no hard links). An
    unwritable folder raises an error naming ``target`` (the output) and the folder."""
    text = lock_text().encode()
    folder = os.path.dirname(lock) or "."
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part", prefix=lock_temp_prefix())
    except OSError as exc:
        clear = unwritable_error(target or lock, os.path.abspath(folder), exc)
        if clear is None:
            raise
        raise clear from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        try:
            os.link(tmp, lock)
            return
        except FileExistsError:
            raise
        except OSError:  # no hard links here: create it, then write it
            pass
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(text)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
