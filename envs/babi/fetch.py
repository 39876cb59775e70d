"""Fetching the official bAbI archive (`tasks_1-20_v1-2.tar.gz`) and unpacking it safely.

The archive is data from the internet, so unpacking trusts nothing in it: only plain files and
folders are taken, a member with an absolute path, a `..` part, a link or a device is an error
(nothing is written), and the files are copied out by memrl itself rather than by
`tarfile.extractall`. Unpacking goes into a temporary folder beside `dest`, which is renamed to
`dest` only once the archive has been read completely, so an interrupted fetch never leaves a
half-filled data folder behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable
from os import PathLike
from pathlib import Path, PurePosixPath

from envs.babi.dataset import ARCHIVE_FOLDER, SIZES
from envs.babi.reader import BabiDataError

# Facebook Research's file server; the address the 2015 papers gave
# (www.thespermwhale.com/jaseweston/babi/...) no longer serves the archive.
OFFICIAL_URL = "https://dl.fbaipublicfiles.com/babi/tasks_1-20_v1-2.tar.gz"
MAX_UNPACKED_BYTES = 2 << 30  # the official archive unpacks to well under this


class BabiArchiveError(BabiDataError):
    """An archive that is unreadable, unsafe to unpack, or does not hold the bAbI tasks."""


def _safe_name(member: tarfile.TarInfo, archive: str) -> PurePosixPath:
    name = member.name
    path = PurePosixPath(name)
    if not name or name.startswith(("/", "\\")) or path.is_absolute() or ":" in path.parts[0]:
        raise BabiArchiveError(f"{archive}: member {name!r} has an absolute path; refused")
    if ".." in path.parts or "\\" in name:
        raise BabiArchiveError(f"{archive}: member {name!r} leaves the target folder; refused")
    if not (member.isfile() or member.isdir()):
        kind = "a link" if member.issym() or member.islnk() else "not a plain file or folder"
        raise BabiArchiveError(f"{archive}: member {name!r} is {kind}; refused")
    return path


def unpack_archive(archive: str | PathLike[str], dest: str | PathLike[str]) -> Path:
    """Unpack the bAbI archive at `archive` so that `dest` holds `en/`, `en-10k/`, ...

    Checks every member first (see the module docstring), then writes into a temporary folder
    beside `dest` and renames it. `dest` must not exist yet or be an empty folder.
    """
    archive, dest = Path(archive), Path(dest)
    if dest.exists() and not (dest.is_dir() and not any(dest.iterdir())):
        raise BabiDataError(f"{dest} already exists and is not empty; unpack into a new folder")
    try:
        tar = tarfile.open(archive, "r:*")  # noqa: SIM115 (closed by `with tar` below)
    except (OSError, tarfile.TarError, EOFError, zlib.error) as err:
        raise BabiArchiveError(f"{archive}: not a readable tar archive ({err})") from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        with tar:
            try:
                members = tar.getmembers()
            except (OSError, tarfile.TarError, EOFError, zlib.error) as err:
                raise BabiArchiveError(f"{archive}: damaged archive ({err})") from None
            paths = [_safe_name(m, str(archive)) for m in members]
            if sum(m.size for m in members if m.isfile()) > MAX_UNPACKED_BYTES:
                raise BabiArchiveError(f"{archive}: unpacks to more than {MAX_UNPACKED_BYTES} B")
            for member, path in zip(members, paths, strict=True):
                target = tmp.joinpath(*path.parts)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:
                    raise BabiArchiveError(f"{archive}: member {member.name!r} has no data")
                with source, open(target, "xb") as out:
                    shutil.copyfileobj(source, out)
                    out.flush()
                    os.fsync(out.fileno())
        top = tmp / ARCHIVE_FOLDER if (tmp / ARCHIVE_FOLDER).is_dir() else tmp
        if not any((top / folder).is_dir() for folder in SIZES.values()):
            raise BabiArchiveError(
                f"{archive}: no {' or '.join(SIZES.values())} folder, at the top or under "
                f"{ARCHIVE_FOLDER}/; not the bAbI tasks archive"
            )
        os.rename(top, dest)
        return dest
    except (OSError, tarfile.TarError, EOFError, zlib.error) as err:
        if isinstance(err, FileExistsError):
            raise BabiArchiveError(f"{archive}: a member is listed twice ({err})") from None
        raise BabiArchiveError(f"{archive}: cannot unpack ({err})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


Progress = Callable[[int, "int | None"], None]  # (bytes so far, total bytes if known)


def download(
    url: str, target: Path, timeout: float = 60.0, progress: Progress | None = None
) -> None:
    """Stream `url` (http or https) into the file `target`, telling `progress` after each block."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise BabiDataError(f"{url!r} is not an http(s) address")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as out:
            length = response.headers.get("Content-Length", "")
            total = int(length) if length.isdigit() else None
            done = 0
            while block := response.read(1 << 20):
                out.write(block)
                done += len(block)
                if progress is not None:
                    progress(done, total)
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise BabiDataError(
            f"cannot download {url}: {reason}; without internet, pass the archive's path "
            f"(archive=..., or `memrl data babi --archive FILE`)"
        ) from None


def fetch_babi(
    dest: str | PathLike[str],
    url: str = OFFICIAL_URL,
    archive: str | PathLike[str] | None = None,
    sha256: str | None = None,
    timeout: float = 60.0,
    progress: Progress | None = None,
) -> Path:
    """The bAbI folder `dest` (holding `en/`, `en-10k/`, ...), downloaded from `url` or unpacked
    from the local `archive`. A `dest` that already holds `en/` is returned as it is.
    `sha256`, when given, must match the archive's digest; `progress` follows the download."""
    dest = Path(dest)
    if (dest / SIZES["1k"]).is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    downloaded = None
    try:
        if archive is None:
            fd, name = tempfile.mkstemp(prefix=f".{dest.name}-", suffix=".tar.gz", dir=dest.parent)
            os.close(fd)
            downloaded = Path(name)
            download(url, downloaded, timeout, progress)
            archive = downloaded
        if sha256 is not None and (digest := _sha256(Path(archive))) != sha256.lower():
            raise BabiArchiveError(f"{archive}: sha256 {digest} is not the expected {sha256}")
        return unpack_archive(archive, dest)
    finally:
        if downloaded is not None:
            downloaded.unlink(missing_ok=True)
