"""Download, verify and safely extract the published data set archives.

Every archive is checked against its published checksum; where none is published,
`verify_or_record` pins size + sha256 of the first download in a tracked JSON file.
A user without network access can drop the published file into the download folder
by hand: `fetch` verifies it and never touches the network.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import posixpath
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath


from segcore.core.errors import UserError
from segcore.core import atomic
from segcore.core.progress import Progress, track

_USER_AGENT = "segcore-download/0.1"


class DownloadError(UserError, RuntimeError):
    """A download, verification or extraction failed; the message says what to do."""


@dataclass(frozen=True)
class Archive:
    """One published file: where it lives, how to verify it, what it unpacks to."""

    name: str
    url: str
    filename: str  # name in the download folder; also where a user places it by hand
    md5: str | None  # published checksum, None where the publisher gives none
    size: int | None  # bytes, None where unknown
    extracts_to: str  # directory that must exist under the extraction root afterwards
    sha256: str | None = None  # for mirrors that publish sha256 instead of md5


CATALOG: dict[str, Archive] = {
    "voc2012": Archive(
        name="voc2012",
        url="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
        filename="VOCtrainval_11-May-2012.tar",
        md5="6cd6e144f989b92b3379bac3b3de84fd",
        size=1_999_639_040,
        extracts_to="VOCdevkit/VOC2012",
    ),
    "voc2011": Archive(
        name="voc2011",
        url="http://host.robots.ox.ac.uk/pascal/VOC/voc2011/VOCtrainval_25-May-2011.tar",
        filename="VOCtrainval_25-May-2011.tar",
        md5="6c3384ef61512963050cb5d687e5bf1e",
        size=None,
        extracts_to="TrainVal/VOCdevkit/VOC2011",  # VOC2011 has an extra top folder
    ),
    "sbd": Archive(
        name="sbd",
        url="http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/"
        "semantic_contours/benchmark.tgz",
        filename="benchmark.tgz",
        md5="82b4d87ceb2ed10f6038a1cba92111cb",
        size=1_419_539_633,
        extracts_to="benchmark_RELEASE/dataset",
    ),
    # NYU Depth v2 (Table 4): plain files, no archive (`extracts_to` is the file itself).
    "nyud_labeled": Archive(
        name="nyud_labeled",
        url="http://horatio.cs.nyu.edu/mit/silberman/nyu_depth_v2/nyu_depth_v2_labeled.mat",
        filename="nyu_depth_v2_labeled.mat",
        md5=None,  # none published: the first download's size + sha256 are recorded and enforced
        size=2_972_037_809,
        extracts_to="nyu_depth_v2_labeled.mat",
    ),
    "nyud_mapping": Archive(
        name="nyud_mapping",
        url="https://github.com/ankurhanda/nyuv2-meta-data/raw/master/classMapping40.mat",
        filename="classMapping40.mat",
        md5="e377c88729dd63af81205ac9a8634a19",
        size=10_474,
        extracts_to="classMapping40.mat",
    ),
    "nyud_splits": Archive(
        name="nyud_splits",
        url="http://horatio.cs.nyu.edu/mit/silberman/indoor_seg_sup/splits.mat",
        filename="splits.mat",
        md5="08e3c3aea27130ac7c01ffd739a4535f",
        size=2_626,
        extracts_to="splits.mat",
    ),
    # SIFT Flow (Table 5): one zip, no published checksum (size + sha256 pinned on first download).
    "siftflow": Archive(
        name="siftflow",
        url="http://www.cs.unc.edu/~jtighe/Papers/ECCV10/siftflow/SiftFlowDataset.zip",
        filename="SiftFlowDataset.zip",
        md5=None,
        size=None,  # about 140 MB
        extracts_to="SiftFlowDataset",
    ),
    # ISBI 2012 (U-Net): the official TIFFs need a registration (place them by hand in downloads/);
    # this HDF5 mirror of the training stack publishes a sha256.
    "isbi_mirror": Archive(
        name="isbi_mirror",
        url="https://oc.embl.de/index.php/s/h0TkwqxU0PJDdMd/download",
        filename="isbi.h5",
        md5=None,
        size=None,
        extracts_to="isbi.h5",
        sha256="0e10fe909a1243084d91773470856993b7d40126a12e85f0f1345a7a9e512f29",
    ),
}

# Size + sha256 of first downloads of files without a published checksum (commit this file).
RECORDED_CHECKSUMS = Path(__file__).resolve().parent / "recorded_checksums.json"  # beside this module


# ---------------------------------------------------------------- verification


def file_digest(path: Path, algorithm: str = "md5", chunk: int = 1 << 20, progress: bool = False) -> str:
    """Hex digest of a file's bytes, read in chunks (archives are gigabytes: ``progress`` shows where it is)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f, Progress(Path(path).stat().st_size, f"{algorithm} of {Path(path).name}", unit="B",
                                         enabled=progress) as shown:
        while block := f.read(chunk):
            h.update(block)
            shown.update(len(block))
    return h.hexdigest()


def _mismatch(path: Path, size: int | None, md5: str | None, sha256: str | None,
              progress: bool = False) -> str | None:
    """Describe how `path` differs from the expected size/checksums, or None if it matches."""
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        return f"size {actual_size} bytes, expected {size}"
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected is not None:
            actual = file_digest(path, algorithm, progress=progress)
            if actual != expected.lower():
                return f"{algorithm} {actual}, expected {expected}"
    return None


def verify_or_record(path: Path, record_file: Path, progress: bool = False) -> dict[str, int | str]:
    """Check `path` against its size + sha256 pinned in `record_file`, pinning it if absent.

    For files without a published checksum: the first download is trusted and recorded
    (commit `record_file`), every later run must produce the same bytes.
    Returns the record {"size": ..., "sha256": ...}.
    """
    path, record_file = Path(path), Path(record_file)
    records = json.loads(record_file.read_text()) if record_file.exists() else {}
    actual = {"size": path.stat().st_size, "sha256": file_digest(path, "sha256", progress=progress)}
    expected = records.get(path.name)
    if expected is None:
        records[path.name] = actual
        record_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = record_file.with_name(record_file.name + ".tmp")
        tmp.write_text(json.dumps(records, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, record_file)
        return actual
    if expected != actual:
        raise DownloadError(
            f"{path}: size {actual['size']} sha256 {actual['sha256']}, but {record_file} recorded "
            f"size {expected['size']} sha256 {expected['sha256']}; delete the file and rerun"
        )
    return actual


# ---------------------------------------------------------------- download


def _hint(dest: Path, md5: str | None, size: int | None) -> str:
    """Tell a user behind a firewall where to put the file by hand."""
    check = f"md5 {md5}" if md5 else "no published md5"
    if size is not None:
        check += f", {size} bytes"
    return f"download it by hand and place it at {dest} ({check})"


def _content_range(headers) -> tuple[int | None, int | None]:
    """(first byte, total length) from a Content-Range header; None where absent or '*'."""
    m = re.match(r"bytes\s+(\d+|\*)(?:-\d+)?/(\d+|\*)", headers.get("Content-Range", "") or "")
    if m is None:
        return None, None
    first, total = m.groups()
    return (None if first == "*" else int(first)), (None if total == "*" else int(total))


def _open(url: str, offset: int, timeout: float):
    """GET `url`, asking for bytes from `offset` on; redirects (http->https, new host) are followed."""
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    # A fresh opener per call so proxy settings are read from the environment now, not cached.
    request = urllib.request.Request(url, headers=headers)
    return urllib.request.build_opener().open(request, timeout=timeout)


def _download(url: str, part: Path, hint: str, *, progress: bool, timeout: float, chunk: int) -> None:
    """Bring `part` up to the full content of `url`, resuming from its current length."""
    offset = part.stat().st_size if part.exists() else 0
    try:
        resp = _open(url, offset, timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            # Range beyond the end: either .part is already complete or it is junk.
            if _content_range(err.headers)[1] == offset:
                return
            part.unlink()
            return _download(url, part, hint, progress=progress, timeout=timeout, chunk=chunk)
        raise DownloadError(f"GET {url} failed: HTTP {err.code} {err.reason}; {hint}") from err
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(f"cannot reach {url} ({reason}); {hint}") from err
    with resp:
        # 206 continues at Content-Range's first byte; 200 means the server ignored Range.
        first = _content_range(resp.headers)[0]
        start = (offset if first is None else first) if resp.status == 206 else 0
        if start > offset:
            raise DownloadError(f"GET {url}: server resumed at byte {start}, {part} has {offset}")
        length = resp.headers.get("Content-Length")
        expected = start + int(length) if length is not None else None
        got = start
        with open(part, "r+b" if part.exists() else "wb") as out, \
                Progress(expected, f"download {part.name.removesuffix('.part')}", unit="B", initial=start,
                         enabled=progress) as bar:
            out.seek(start)
            out.truncate()
            try:
                while block := resp.read(chunk):
                    out.write(block)
                    got += len(block)
                    bar.update(len(block))
            except (OSError, http.client.HTTPException) as err:
                raise DownloadError(
                    f"transfer of {url} broke after {got} bytes ({err}); {part} is kept, rerun to resume"
                ) from err
    # http.client returns b"" rather than raising when the peer closes early: count bytes.
    if expected is not None and got < expected:
        raise DownloadError(
            f"transfer of {url} stopped after {got} of {expected} bytes; {part} is kept, rerun to resume"
        )


def fetch(
    url: str,
    dest: Path,
    *,
    md5: str | None,
    size: int | None = None,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = 30.0,
    chunk: int = 1 << 20,
) -> Path:
    """Return `dest` holding the verified content of `url`, downloading only if it is absent.

    A file already at `dest` (earlier run or placed by hand) is verified, never re-downloaded.
    Downloads go to `<dest>.part` (resumed with an HTTP Range request) and are renamed to
    `dest` only once size and checksums match, so `dest` is never a partial file.
    """
    dest = Path(dest)
    if dest.exists():
        problem = _mismatch(dest, size, md5, sha256, progress)
        if problem:
            raise DownloadError(f"{dest} is not the expected file ({problem}); delete it and rerun")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if part.exists() and size is not None and part.stat().st_size > size:
        part.unlink()  # longer than the real file: cannot be a prefix of it
    if not (part.exists() and size is not None and part.stat().st_size == size):
        _download(url, part, _hint(dest, md5, size), progress=progress, timeout=timeout, chunk=chunk)
    if size is not None and part.stat().st_size < size:  # server sent no Content-Length
        raise DownloadError(f"transfer of {url} stopped at {part.stat().st_size} of {size} bytes; "
                            f"{part} is kept, rerun to resume")
    problem = _mismatch(part, size, md5, sha256, progress)
    if problem:
        part.unlink()
        raise DownloadError(f"download of {url} is corrupt ({problem}); it was deleted, rerun")
    os.replace(part, dest)
    return dest


# ---------------------------------------------------------------- extraction


def _check_name(name: str, archive: Path, member: str | None = None) -> None:
    """Reject paths (member names, hardlink targets) that could land outside the target."""
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    if posix.is_absolute() or windows.drive or ".." in posix.parts or ".." in windows.parts:
        label = name if member is None else member
        raise DownloadError(
            f"unsafe member {label!r} in {archive}: absolute path or '..' in {name!r} not allowed"
        )


def _check_tar_member(m: tarfile.TarInfo, archive: Path) -> None:
    """Reject escaping names, links pointing outside and device files."""
    _check_name(m.name, archive)
    if m.issym():
        target = posixpath.normpath(posixpath.join(posixpath.dirname(m.name), m.linkname))
        if m.linkname.startswith("/") or target == ".." or target.startswith("../"):
            raise DownloadError(
                f"unsafe member {m.name!r} in {archive}: symlink to {m.linkname!r} leaves the target"
            )
    elif m.islnk():
        _check_name(m.linkname, archive, member=m.name)
    elif not (m.isreg() or m.isdir()):
        raise DownloadError(f"unsafe member {m.name!r} in {archive}: device or fifo files not allowed")


class _Position:
    """A read-only file that reports its read position to ``shown`` (a Progress, or None): tarfile's
    index of a 2 GB archive reads it whole, decompressing it, the silent minute before extraction."""

    def __init__(self, f) -> None:
        self._f, self.shown = f, None

    def read(self, *n):
        data = self._f.read(*n)
        if self.shown is not None:
            self.shown.update_to(self._f.tell())
        return data

    def __getattr__(self, name):
        return getattr(self._f, name)


def _extract_all(archive: Path, dest: Path, progress: bool = False) -> None:
    """Validate every member of a tar (any compression) or zip, then extract into `dest`."""
    try:
        if tarfile.is_tarfile(archive):
            with open(archive, "rb") as raw, tarfile.open(fileobj=(watched := _Position(raw)), mode="r:*") as tar:
                with Progress(archive.stat().st_size, f"index of {archive.name}", unit="B",
                              enabled=progress) as watched.shown:
                    members = tar.getmembers()  # reads the whole archive: truncation shows up here
                watched.shown = None
                for m in members:
                    _check_tar_member(m, archive)
                # The "data" filter re-checks each member against links already on disk,
                # which catches symlink chains that only escape once resolved.
                tar.extractall(dest, members=track(members, f"extract {archive.name}", unit="files",
                                                   enabled=progress), filter="data")
        elif zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for name in zf.namelist():
                    _check_name(name, archive)
                for info in track(zf.infolist(), f"extract {archive.name}", unit="files", enabled=progress):
                    zf.extract(info, dest)
        else:
            raise DownloadError(f"{archive} is not a readable tar or zip (corrupt?); delete it and rerun")
    except tarfile.FilterError as err:
        raise DownloadError(f"unsafe member in {archive}: {err}") from err
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as err:
        raise DownloadError(f"{archive} is corrupt or truncated ({err}); delete it and rerun") from err


def _move_into(src: Path, dst: Path, *, dry_run: bool) -> None:
    """Move the entries of `src` into `dst`, merging directories that already exist."""
    for entry in sorted(src.iterdir()):
        target = dst / entry.name
        if not target.exists() and not target.is_symlink():
            if not dry_run:
                os.replace(entry, target)  # atomic per entry: same filesystem
        elif target.is_dir() and entry.is_dir() and not entry.is_symlink():
            _move_into(entry, target, dry_run=dry_run)
        elif target.is_dir() or entry.is_dir():
            raise DownloadError(f"cannot extract {entry.name}: {target} exists as another kind of entry")
        elif not dry_run:
            os.replace(entry, target)


def safe_extract(archive: Path, root: Path, progress: bool = False) -> None:
    """Extract a tar/tar.gz/zip into `root`, refusing any member that would escape it.

    Everything is validated and extracted into a temporary directory beside `root` first,
    so a corrupt or malicious archive leaves nothing half-written in `root`.
    """
    archive, root = Path(archive), Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.extracting-", dir=root.parent))
    try:
        _extract_all(archive, tmp, progress)
        root.mkdir(exist_ok=True)
        _move_into(tmp, root, dry_run=True)  # find conflicts before moving anything
        _move_into(tmp, root, dry_run=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fetch_pinned(archive: Archive, download_dir: Path, progress: bool, record_file: Path | None) -> Path:
    """The verified download of `archive`; without a published checksum, pinned in `record_file`."""
    path = fetch(archive.url, Path(download_dir) / archive.filename, md5=archive.md5, size=archive.size,
                 sha256=archive.sha256, progress=progress)
    if archive.md5 is None and archive.sha256 is None:
        verify_or_record(path, record_file, progress)
    return path


def ensure_file(archive: Archive, download_dir: Path, root: Path, *, progress: bool = True,
                record_file: Path | None = None) -> Path:
    """Return `root/archive.filename`: the verified download, hard-linked (or copied) into place.

    For a plain file that is used as is (no extraction). Files without a published checksum
    are pinned in `record_file` (default RECORDED_CHECKSUMS) on first download.
    """
    target = Path(root) / archive.filename
    if target.exists():
        return target
    path = _fetch_pinned(archive, download_dir, progress, record_file or RECORDED_CHECKSUMS)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.unlink(missing_ok=True)
    atomic.link_or_copy(path, tmp)  # no second copy of a 3 GB file where the file system allows
    os.replace(tmp, target)
    return target


def ensure(
    archive: Archive,
    download_dir: Path,
    root: Path,
    *,
    progress: bool = True,
    record_file: Path | None = None,
) -> Path:
    """Return `root/archive.extracts_to`, downloading, verifying and extracting if it is missing.

    Archives without a published checksum need `record_file` (see `verify_or_record`).
    """
    target = Path(root) / archive.extracts_to
    if target.is_dir():
        return target
    if archive.md5 is None and archive.sha256 is None and record_file is None:
        raise ValueError(f"archive {archive.name!r} has no published checksum; pass record_file")
    path = _fetch_pinned(archive, download_dir, progress, record_file)
    safe_extract(path, root, progress)
    if not target.is_dir():
        raise DownloadError(f"{path} was extracted into {root} but {target} is missing; wrong archive?")
    return target
