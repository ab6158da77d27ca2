"""Writing outputs safely: never replaced silently, never half-written in place, never one of the inputs.

The rules every writing command follows (``imgen train``, ``dataset merge``, ``generate``,
``collect``, ``bag2hdf5``, ``experiment``, ``sim video``, ``eval --videos``):

- An existing output is refused unless ``overwrite`` (``--overwrite``) is given.
- An output that *is* one of the command's inputs is refused, with or without ``overwrite``. Paths
  are compared by inode (``os.path.samefile``: ``st_dev`` + ``st_ino``), so a hard link, a symlink
  or ``./x`` vs ``x`` is caught; an output directory is refused when an input lies inside it.
- Files are written to a hidden temporary beside the output (``.<name>.<pid>.imgen-tmp``, same
  filesystem), fsynced, and moved into place with ``os.replace`` (``link`` without
  ``overwrite``, which cannot clobber a file that appeared meanwhile). At every instant the
  output path holds the old file or the complete new one. A run killed mid-write (SIGKILL) leaves
  the old output intact and its temporary behind; the next run writing that output deletes the
  temporaries of processes that no longer exist (:func:`remove_stale_temps`).
- Files written incrementally for resumption (``imgen generate``, ``imgen collect``) grow in
  ``<out>.partial`` (:func:`partial_path`), marked incomplete in their metadata
  (``imgen_ros.data.writer``), and are published with :func:`publish` when finished.
- Directories (:func:`output_dir`, ``imgen train``): a new or empty directory is written in place;
  an existing non-empty one is replaced only with ``overwrite``, and then the new run is built in a
  hidden staging directory beside it and swapped in (``renameat2(RENAME_EXCHANGE)``: atomic) only
  after it succeeded; the old one is deleted afterwards. A failed replacement run leaves the old
  directory untouched.
- A refused or failed run removes what it created: temporaries, staging directories, parent
  directories it made (results worth keeping, e.g. checkpoints of a failed training, are kept
  visibly; see :func:`output_dir`).
- Operating-system errors (read-only filesystem, a path under a regular file, no permission, no
  space) become a one-line :class:`OutputError` naming the path.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

TEMP_SUFFIX = ".imgen-tmp"
PARTIAL_SUFFIX = ".partial"

PathLike = str | os.PathLike


class OutputError(ValueError):
    """A refused or unwritable output; the message is one line naming the path."""


def os_error(path: PathLike, exc: OSError) -> OutputError:
    """``cannot write PATH: <reason>`` for an OSError met while creating or replacing an output."""
    reason = exc.strerror or str(exc)
    return OutputError(f"cannot write {path}: {reason}")


# ----------------------------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------------------------

def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether two existing paths name the same file (same device and inode); False if either is missing."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _inside(path: PathLike, folder: PathLike) -> bool:
    try:
        real, root = os.path.realpath(path), os.path.realpath(folder)
        return os.path.commonpath([real, root]) == root
    except ValueError:
        return False


def check_not_input(out: PathLike, inputs: Iterable[PathLike]) -> None:
    """Refuse ``out`` if it is one of ``inputs`` (by inode) or, for a directory, holds one of them."""
    out = Path(out)
    for item in inputs:
        if item is None or not os.path.exists(item):
            continue
        if same_file(out, item):
            how = "" if os.path.abspath(out) == os.path.abspath(item) else " (same inode: a link or another name)"
            raise OutputError(f"output {out} is the input {item}{how}; choose another output path")
        if out.is_dir() and _inside(item, out):
            raise OutputError(f"input {item} lies inside the output directory {out}; choose another output path")


def check_not_special(out: PathLike) -> None:
    """OutputError if ``out`` is a device, FIFO or socket: replacing one destroys it (``/dev/null`` as root)."""
    out = Path(out)
    if os.path.lexists(out) and not out.is_symlink() and not out.is_file() and not out.is_dir():
        raise OutputError(f"{out} is not a regular file (a device, FIFO or socket); imgen writes and replaces "
                          "only regular files")


def check_file_output(out: PathLike, *, overwrite: bool, inputs: Iterable[PathLike] = ()) -> Path:
    """The checks for a file output: not an input, not a directory, not a device, FIFO or socket (which
    a replace would destroy: ``--out /dev/null --overwrite`` as root), absent unless ``overwrite``."""
    out = Path(out)
    check_not_input(out, inputs)
    if out.is_dir():
        raise OutputError(f"{out} is a directory; the output must be a file path")
    check_not_special(out)
    if os.path.lexists(out) and not overwrite:
        raise OutputError(f"{out} exists; pass --overwrite to replace it")
    return out


def fingerprint(path: PathLike, chunk: int = 1 << 20) -> dict[str, object]:
    """``{"path", "bytes", "sha256"}`` of a file's content (streamed), to detect a replaced input."""
    path = Path(path)
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
            size += len(block)
    return {"path": str(path), "bytes": size, "sha256": digest.hexdigest()}


# ----------------------------------------------------------------------------------------------
# temporaries and parents
# ----------------------------------------------------------------------------------------------

def temp_path(out: PathLike, suffix: str = "") -> Path:
    """This process's hidden temporary for ``out``: ``.<name>.<pid>.imgen-tmp<suffix>`` in the same folder
    (``suffix``, e.g. ``.mp4``, for writers that pick the format by extension)."""
    out = Path(out)
    return out.with_name(f".{out.name}.{os.getpid()}{TEMP_SUFFIX}{suffix}")


def partial_path(out: PathLike) -> Path:
    """Where an incrementally written output grows until it is published: ``<out>.partial``."""
    out = Path(out)
    return out.with_name(out.name + PARTIAL_SUFFIX)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(out: PathLike) -> list[Path]:
    """Delete temporaries of ``out`` left by processes that no longer exist (killed mid-write)."""
    out = Path(out)
    prefix = f".{out.name}."
    removed: list[Path] = []
    try:
        siblings = list(out.parent.iterdir()) if out.parent.is_dir() else []
    except OSError:
        return removed
    for item in siblings:
        name = item.name
        pid, marked, _ = name[len(prefix):].partition(TEMP_SUFFIX)
        if not (name.startswith(prefix) and marked):
            continue
        if not pid.isdigit() or int(pid) == os.getpid() or _pid_alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            if item.is_dir() and not item.is_symlink():
                shutil.rmtree(item)
            else:
                item.unlink()
            removed.append(item)
    return removed


def nearest_existing(path: PathLike) -> Path:
    """``path`` itself if it exists, else its innermost existing ancestor (what a write there would meet)."""
    existing = Path(path).absolute()
    while not os.path.lexists(existing) and existing.parent != existing:
        existing = existing.parent
    return existing


def make_parents(path: PathLike) -> list[Path]:
    """Create the missing parent directories of ``path``; returns those created (outermost first)."""
    parent = Path(path).parent
    missing: list[Path] = []
    while not parent.exists():
        missing.append(parent)
        if parent.parent == parent:
            break
        parent = parent.parent
    missing.reverse()
    for folder in missing:
        try:
            folder.mkdir()
        except FileExistsError:
            if not folder.is_dir():
                remove_created(missing[:missing.index(folder)])
                raise os_error(path, OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))) from None
        except OSError as exc:
            remove_created(missing[:missing.index(folder)])
            raise os_error(path, exc) from exc
    if not parent.is_dir():
        raise os_error(path, OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR)))
    return missing


def remove_created(folders: list[Path]) -> None:
    """Remove directories made by :func:`make_parents` (innermost first) if they are still empty."""
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        _fsync(folder)


def publish(src: PathLike, out: PathLike, *, overwrite: bool) -> None:
    """Move the finished file ``src`` to ``out`` atomically (fsynced first).

    Without ``overwrite`` a hard link is made instead of a rename, so a file that appeared at
    ``out`` meanwhile is never clobbered (OutputError); ``src`` is then unlinked.
    """
    src, out = Path(src), Path(out)
    check_not_special(out)
    try:
        _fsync(src)
        if not overwrite:
            try:
                os.link(src, out)
            except FileExistsError:
                raise OutputError(f"{out} exists (created while this run wrote it); pass --overwrite to replace "
                                  "it") from None
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV):
                    raise
                if os.path.lexists(out):
                    raise OutputError(f"{out} exists; pass --overwrite to replace it") from None
                os.replace(src, out)
            else:
                src.unlink()
        else:
            os.replace(src, out)
    except OSError as exc:
        raise os_error(out, exc) from exc
    _fsync_dir(out.parent)


def prepare_partial(out: PathLike, *, overwrite: bool, inputs: Iterable[PathLike] = (),
                    what: str = "an interrupted run's") -> tuple[Path, list[Path]]:
    """Check ``out`` (as :func:`check_file_output`) and create its ``<out>.partial``, which the caller
    grows and finally :func:`publish`-es; returns the partial path and the parent folders created.

    A ``<out>.partial`` left by an interrupted run is refused without ``overwrite`` (it holds
    ``what`` results), and replaced with it.
    """
    out = check_file_output(out, overwrite=overwrite, inputs=inputs)
    partial = partial_path(out)
    check_not_input(partial, inputs)
    if os.path.lexists(partial) and not overwrite:
        raise OutputError(f"{partial} holds {what} results; move it away, or pass --overwrite to discard it")
    created = make_parents(out)
    _create_empty(partial, out, created, os.O_TRUNC)
    return partial, created


def _create_empty(path: Path, out: Path, created: list[Path], flag: int) -> None:
    """Create ``path`` empty (``flag``: os.O_TRUNC or os.O_EXCL); on failure remove the parent folders
    made for ``out`` and raise its one-line OutputError."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | flag, 0o644))
    except OSError as exc:
        remove_created(created)
        raise os_error(out, exc) from exc


@contextlib.contextmanager
def atomic_file(out: PathLike, *, overwrite: bool = False, inputs: Iterable[PathLike] = (),
                suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``out`` (ending in ``suffix``) to write; on success it replaces ``out``
    atomically.

    Refused up front (OutputError) when ``out`` exists without ``overwrite``, is one of ``inputs``,
    or cannot be written. On any exception the temporary and the parent folders made for it are
    removed and ``out`` is untouched.
    """
    out = check_file_output(out, overwrite=overwrite, inputs=inputs)
    created = make_parents(out)
    remove_stale_temps(out)
    tmp = temp_path(out, suffix)
    _create_empty(tmp, out, created, os.O_EXCL)
    try:
        yield tmp
        publish(tmp, out, overwrite=overwrite)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        remove_created(created)
        raise


# ----------------------------------------------------------------------------------------------
# directories
# ----------------------------------------------------------------------------------------------

def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def swap_in(staging: Path, out: Path) -> None:
    """Put the finished directory (or file) ``staging`` at ``out``, then delete what it replaced."""
    if not out.exists():
        os.rename(staging, out)
        return
    if _exchange(staging, out):
        remove_path(staging)  # now the old directory
        return
    old = out.with_name(f".{out.name}.{os.getpid()}.imgen-old")
    os.rename(out, old)
    os.rename(staging, out)
    remove_path(old)


def remove_path(path: Path) -> None:
    """Delete a directory tree or a file, or only the link when ``path`` is a symlink (its target is not ours)."""
    if path.is_symlink() or not path.is_dir():
        path.unlink()
    else:
        shutil.rmtree(path)


def _probe_writable(folder: Path) -> None:
    probe = folder / f".{os.getpid()}.imgen-probe"
    fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    os.close(fd)
    probe.unlink()


def _keep_failed(folder: Path, out: Path) -> Path:
    kept = out.with_name(f"{out.name}.partial-{time.strftime('%Y%m%d-%H%M%S')}")
    os.rename(folder, kept)
    print(f"imgen: the failed run's partial results are kept in {kept}", file=sys.stderr)
    return kept


@contextlib.contextmanager
def output_dir(out: PathLike, *, overwrite: bool = False, inputs: Iterable[PathLike] = (),
               worth_keeping: Callable[[Path], bool] = lambda _: False) -> Iterator[Path]:
    """Yield the directory a run should write into for the output directory ``out``.

    - ``out`` missing or empty: ``out`` itself. If the run fails, what it wrote is removed unless
      ``worth_keeping(out)`` (e.g. it holds checkpoints), in which case it stays in place.
    - ``out`` non-empty: refused without ``overwrite``; with it, a hidden staging directory beside
      ``out``, swapped in after the run succeeded. If the run fails, ``out`` is untouched and the
      staging directory is removed, or kept as ``<out>.partial-<time>`` if ``worth_keeping``.
    """
    out = Path(out)
    check_not_input(out, inputs)
    if os.path.lexists(out) and not out.is_dir():
        raise OutputError(f"{out} exists and is not a directory")
    try:
        non_empty = out.is_dir() and any(out.iterdir())
    except OSError as exc:
        raise os_error(out, exc) from exc
    if non_empty and not overwrite:
        raise OutputError(f"{out} exists and is not empty; pass --overwrite to replace it (the old one is kept "
                          "until the new run succeeds)")
    created = make_parents(out)
    remove_stale_temps(out)
    existed = out.is_dir()
    target = temp_path(out) if non_empty else out
    try:
        target.mkdir(exist_ok=not non_empty)
        _probe_writable(target)
    except OSError as exc:
        if target != out or not existed:
            with contextlib.suppress(OSError):
                target.rmdir()
        remove_created(created)
        raise os_error(out, exc) from exc
    try:
        yield target
        if non_empty:
            try:
                swap_in(target, out)
            except OSError as exc:
                raise os_error(out, exc) from exc
    except BaseException:
        if target.exists() and worth_keeping(target):
            if non_empty:
                _keep_failed(target, out)
        else:
            if target != out or not existed:
                shutil.rmtree(target, ignore_errors=True)
            else:
                for item in list(target.iterdir()):
                    if item.is_dir() and not item.is_symlink():
                        shutil.rmtree(item, ignore_errors=True)
                    else:
                        item.unlink(missing_ok=True)
            remove_created(created)
        raise
