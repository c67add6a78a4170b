"""Writing output files safely: atomic writes, output claims and stale temporaries.

Files are written through :func:`atomic_open`, whose temporary file
(``.<name>.tdrdenoise-<pid>@<host>.<random>.part``, the name shortened where the whole
would exceed 255 bytes) is marked as ours and names the process writing it, so that
:func:`clean_stale_temporaries` can remove what a killed run left behind, and nothing
else. Runs that share an output folder split the work with :func:`claim_output`: a
lock file (``.<name>.tdrdenoise.lock``) created exclusively, holding ``tdrdenoise
<pid>@<host>``, through a temporary file ``.tdrdenoise-<pid>@<host>.<random>.part``;
:func:`prepare_output_folder` checks an output folder before the work starts.
The public functions are documented, and imported, from :mod:`tdrdenoise.utils`.
"""
import contextlib
import errno
import os
import re
import socket
import sys
import tempfile
import time

__all__ = ["OutputClaimedError", "atomic_open", "clean_stale_temporaries",
           "prepare_output_folder", "STALE_AFTER", "host_name"]


class OutputClaimedError(FileExistsError):
    """An output file is being written by another run (see :func:`claim_output`)."""


def _umask():
    """The process umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Temporaries and locks of dead writers, or older than this (seconds), are stale.
STALE_AFTER = 24 * 3600.0

#: A lock file of ours still empty after this many seconds was left by a crash between
#: its creation and its first write (only where the file system has no hard links).
_EMPTY_LOCK_GRACE = 60.0

#: The mark of our temporary and lock files, in their names and in the locks' content.
MARKER = "tdrdenoise"
_TEMP_RE = re.compile(r"^\.(?:(?P<name>.+)\.)?" + MARKER +
                      r"-(?P<pid>\d+)@(?P<host>[A-Za-z0-9-]*)\.[A-Za-z0-9_]+\.part$")
#: The longest file name (bytes) most file systems take.
NAME_MAX = 255
LOCK_SUFFIX = f".{MARKER}.lock"
OWNER_RE = re.compile(r"^" + MARKER + r" (?P<pid>\d+)@(?P<host>[A-Za-z0-9-]*)$")


def host_name():
    """This machine's name, reduced to characters safe in a file name."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40]


def _owner_tag():
    return f"{os.getpid()}@{host_name()}"


def shortened(name, room):
    """``name`` cut to at most ``room`` bytes (file names are limited in bytes)."""
    while name and len(os.fsencode(name)) > room:
        name = name[:-1]
    return name


def _temp_prefix(path):
    """Prefix of the temporary files of ``path``: ``.<name>.tdrdenoise-<pid>@<host>.``,
    the name shortened so that the whole temporary name (with mkstemp's 8 random
    characters and ``.part``) fits in 255 bytes."""
    tail = lock_temp_prefix()
    name = shortened(os.path.basename(path),
                     NAME_MAX - len(tail) - len(".part") - 16)
    return f".{name}{tail}" if name else tail


def lock_temp_prefix():
    """Prefix of the temporary files holding a lock's content while it is created:
    ``.tdrdenoise-<pid>@<host>.`` (short: lock names are long already)."""
    return f".{MARKER}-{_owner_tag()}."


def lock_text():
    return f"{MARKER} {_owner_tag()}\n"


def _pid_alive(pid):
    """Whether process ``pid`` of this machine runs (True where it cannot be told)."""
    if sys.platform == "win32":  # os.kill(pid, 0) would terminate it there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _age(path):
    try:
        return time.time() - os.stat(path).st_mtime
    except OSError:
        return 0.0


def _writer_gone(pid, host, path, max_age):
    """Whether the process (pid, host) that made ``path`` is gone, or ``path`` is too old."""
    if _age(path) > max_age:
        return True
    return host == host_name() and not _pid_alive(int(pid))


def _folder_error(path, folder, exc):
    """A clear error for an output folder that cannot be created."""
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        return NotADirectoryError(f"cannot write {path}: {folder} (or a folder above it) is "
                                  "a file, not a folder; choose another output folder")
    if isinstance(exc, PermissionError):
        return PermissionError(f"cannot write {path}: no permission to create the folder "
                               f"{folder}")
    return exc


#: What mkstemp raises where files cannot be created: no permission, a read-only mount.
_UNWRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}


def unwritable_error(path, folder, exc, what="write"):
    """A clear error naming the file asked for and its folder (not the hidden temporary
    file) for an OSError of :data:`_UNWRITABLE`; None for any other error."""
    if not isinstance(exc, OSError) or exc.errno not in _UNWRITABLE:
        return None
    if exc.errno == errno.EROFS:
        return OSError(errno.EROFS, f"cannot {what} {path}: the folder {folder} is on a "
                                    "read-only file system; choose another folder")
    return PermissionError(f"cannot {what} {path}: no permission to create files in the "
                           f"folder {folder}; choose another folder or change its "
                           "permissions")


@contextlib.contextmanager
def atomic_open(path, overwrite=True):
    """Open ``path`` for binary writing so that it appears whole or not at all.

    The data go to a temporary file in the same folder,
    ``.<name>.tdrdenoise-<pid>@<host>.<random>.part``, which is synced and renamed to ``path``
    when the block ends without an error, and removed otherwise: an interrupted write
    never leaves a half-written file, nor touches an existing one. The temporary file
    of a process killed outright (SIGKILL, power loss) stays behind; its name says
    which process wrote it, and :func:`clean_stale_temporaries` removes it later.

    Parameters
    ----------
    path : str or path-like
        The file to write; its folder is created if needed.
    overwrite : bool, optional
        Replace ``path`` if it exists. With False, the file is created exclusively
        (a hard link, where the file system has them): if another process created
        ``path`` meanwhile, it is kept and `FileExistsError` is raised.

    Yields
    ------
    file object
        Open for binary writing.

    Raises
    ------
    FileExistsError
        If ``overwrite`` is False and ``path`` exists when the data are complete.
    NotADirectoryError
        If the folder of ``path`` (or one above it) is a file.
    PermissionError
        If files cannot be created in the folder of ``path`` (the message names
        ``path`` and its folder).
    OSError
        With ``errno.EROFS``, if that folder is on a read-only file system (the
        message names ``path`` and its folder too).

    Examples
    --------
    >>> import os, tempfile
    >>> from tdrdenoise.utils import atomic_open
    >>> path = os.path.join(tempfile.mkdtemp(), "out.bin")
    >>> with atomic_open(path) as fh:
    ...     _ = fh.write(b"data")
    >>> open(path, "rb").read()
    b'data'
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise _folder_error(path, folder, exc) from None
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part", prefix=_temp_prefix(path))
    except OSError as exc:  # not the hidden temporary's name: the file asked for
        clear = unwritable_error(path, folder, exc)
        if clear is None:
            raise
        raise clear from None
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates the file readable by its owner only: give it the usual mode
        os.chmod(tmp, 0o666 & ~_umask())
        if overwrite:
            os.replace(tmp, path)
        else:
            _create_exclusively(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _create_exclusively(tmp, path):
    """Rename ``tmp`` to ``path`` unless ``path`` exists (atomically where possible)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(f"{path} exists (written by another process meanwhile); "
                              "pass overwrite=True to replace it") from None
    except OSError:  # no hard links here (some network and FAT file systems)
        if os.path.exists(path):
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace "
                                  "it") from None
        os.replace(tmp, path)
    else:
        os.unlink(tmp)


def clean_stale_temporaries(folder, max_age=STALE_AFTER):
    """Remove the temporary and lock files that dead tdrdenoise runs left in ``folder``.

    A run killed outright (SIGKILL, out of memory, power loss) while writing leaves a
    hidden ``.<name>.tdrdenoise-<pid>@<host>.<random>.part`` file of
    :func:`atomic_open` (``.tdrdenoise-<pid>@<host>.<random>.part`` while it creates a
    lock), and possibly a ``.<name>.tdrdenoise.lock`` file of :func:`claim_output`
    holding ``tdrdenoise <pid>@<host>``. Only files that carry
    that mark are candidates: those whose process provably no longer runs (a pid of
    this machine that has ended) and those older than ``max_age`` are removed; those
    of live processes (a run going on beside this one) are kept. A lock of ours that
    is still empty after 60 seconds (its writer died between creating and writing it,
    possible only on file systems without hard links) is removed too. A lock whose
    content is not ours is never removed. Nothing else in ``folder`` is touched: the
    temporary and lock files of other programs (``.pipeline.lock``,
    ``.notes.abcd1234.part``) and those named by tdrdenoise before this mark (without
    ``tdrdenoise`` in their names) stay.

    Parameters
    ----------
    folder : str or path-like
        The folder to clean; a missing folder is left alone.
    max_age : float, optional
        Age in seconds (by modification time) after which a temporary or lock file
        is stale whoever wrote it; 24 hours by default.

    Returns
    -------
    list of str
        The files removed.

    Examples
    --------
    >>> import os, tempfile
    >>> from tdrdenoise.utils import clean_stale_temporaries
    >>> folder = tempfile.mkdtemp()
    >>> dead = os.path.join(folder, ".out.fits.tdrdenoise-999999999@nohost.abc123_x.part")
    >>> _ = open(dead, "wb").write(b"half a file")
    >>> os.utime(dead, (0, 0))  # written long ago
    >>> foreign = os.path.join(folder, ".pipeline.lock")  # another program's lock
    >>> _ = open(foreign, "w").write("busy")
    >>> os.utime(foreign, (0, 0))
    >>> [os.path.basename(name) for name in clean_stale_temporaries(folder)]
    ['.out.fits.tdrdenoise-999999999@nohost.abc123_x.part']
    >>> os.listdir(folder)
    ['.pipeline.lock']
    """
    folder = os.fspath(folder)
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for name in sorted(names):
        if not name.startswith("."):
            continue
        path = os.path.join(folder, name)
        match = _TEMP_RE.match(name)
        if match:
            stale = _writer_gone(match["pid"], match["host"], path, max_age)
        elif name.endswith(LOCK_SUFFIX) and len(name) > len(LOCK_SUFFIX) + 1:
            if break_stale_lock(path, max_age):
                removed.append(path)
            continue
        else:
            continue
        if stale and os.path.isfile(path):
            try:
                os.unlink(path)
            except FileNotFoundError:  # another run cleaned it first
                continue
            removed.append(path)
    return removed


def read_owner(lock):
    """The text of a lock file ('' while being written), or None if it is gone or
    cannot be read."""
    try:
        with open(lock, "rb") as fh:
            return fh.read(200).decode("utf-8", "replace").strip()
    except OSError:
        return None


def _lock_stale(lock, owner, max_age):
    """Whether ``lock`` (holding ``owner``) is ours and its owner is gone."""
    if owner is None:
        return False
    if owner == "":  # ours by name, its writer died before writing it
        return _age(lock) > min(max_age, _EMPTY_LOCK_GRACE)
    match = OWNER_RE.match(owner)
    if match is None:  # not written by tdrdenoise: never ours to remove
        return False
    return _writer_gone(match["pid"], match["host"], lock, max_age)


def break_stale_lock(lock, max_age=STALE_AFTER):
    """Remove ``lock`` if its owner is gone; True if it was removed.

    Two runs may find the same stale lock: a second, exclusive ``.break`` file lets
    one of them at a time check and remove it, so that a run never removes the fresh
    lock another run has just taken in place of the stale one.
    """
    owner = read_owner(lock)
    if not _lock_stale(lock, owner, max_age):
        return False
    breaker = lock + ".break"
    try:
        fd = os.open(breaker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        if _age(breaker) > _EMPTY_LOCK_GRACE:  # its owner died while breaking
            with contextlib.suppress(FileNotFoundError):
                os.unlink(breaker)
        return False
    try:
        os.close(fd)
        if read_owner(lock) == owner:
            os.unlink(lock)
            return True
        return False
    except FileNotFoundError:
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(breaker)


def prepare_output_folder(folder, name="output_dir"):
    """Create ``folder`` if needed and check that files can be written there.

    Run it before long work, so that an unusable output folder fails at once, with a
    message naming the folder and the argument, rather than after hours of work.

    Parameters
    ----------
    folder : str or path-like
        The folder (an empty name is the current folder).
    name : str, optional
        What the folder is, for the messages (an argument or option name).

    Returns
    -------
    str
        ``folder``.

    Raises
    ------
    NotADirectoryError
        If ``folder``, or a folder above it, is a file.
    PermissionError
        If it cannot be created or written.

    Examples
    --------
    >>> import os, tempfile
    >>> from tdrdenoise.utils import prepare_output_folder
    >>> base = tempfile.mkdtemp()
    >>> os.path.isdir(prepare_output_folder(os.path.join(base, "out")))
    True
    >>> open(os.path.join(base, "file"), "w").close()
    >>> prepare_output_folder(os.path.join(base, "file"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    NotADirectoryError: output_dir '...' is a file, not a folder; choose another output folder
    """
    folder = os.fspath(folder) or "."
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise NotADirectoryError(f"{name} {folder!r} is a file, not a folder; choose "
                                 "another output folder")
    try:
        os.makedirs(folder, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise NotADirectoryError(f"cannot create {name} {folder!r}: a folder above it is "
                                 "a file, not a folder") from None
    except OSError as exc:
        raise PermissionError(f"cannot create {name} {folder!r} ({exc.strerror})") from None
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".tdrdenoise-write-test-")
    except OSError as exc:
        raise PermissionError(f"{name} {folder!r} is not writable ({exc.strerror}); choose "
                              "another output folder or change its permissions") from None
    os.close(fd)
    os.unlink(probe)
    return folder
