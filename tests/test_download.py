"""segcore.data.download against a local HTTP server on 127.0.0.1 serving tiny archives."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from segcore.data.download import (
    CATALOG,
    Archive,
    DownloadError,
    ensure,
    fetch,
    safe_extract,
    verify_or_record,
)

VOC_FILES = {
    "VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt": b"2007_000032\n2007_000039\n",
    "VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt": b"2007_000033\n",
    "VOCdevkit/VOC2012/JPEGImages/2007_000032.jpg": bytes(range(256)) * 40,
}


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _info(name: str, **kw) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    for key, value in kw.items():
        setattr(info, key, value)
    return info


def _tar(files: dict[str, bytes], mode: str = "w", extra: tuple[tarfile.TarInfo, ...] = ()) -> bytes:
    """A tar (plain or compressed by `mode`) holding `files` plus raw `extra` members."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for info in extra:
            tar.addfile(info)
        for name, data in files.items():
            tar.addfile(_info(name, size=len(data)), io.BytesIO(data))
    return buf.getvalue()


GOOD = _tar(VOC_FILES)
CORRUPT = GOOD[:2000] + bytes([GOOD[2000] ^ 0xFF]) + GOOD[2001:]
EVIL = {
    "dotdot": _tar({"../evil.txt": b"x"}),
    "absolute": _tar({"/tmp/segcore-evil.txt": b"x"}),
    "symlink": _tar({}, extra=(_info("VOCdevkit/etc", type=tarfile.SYMTYPE, linkname="/etc"),)),
    "symlink-up": _tar({}, extra=(_info("VOCdevkit/up", type=tarfile.SYMTYPE, linkname="../.."),)),
    "hardlink": _tar({}, extra=(_info("passwd", type=tarfile.LNKTYPE, linkname="/etc/passwd"),)),
    "device": _tar({}, extra=(_info("null", type=tarfile.CHRTYPE, devmajor=1, devminor=3),)),
    # Each link lexically stays inside; only resolving sub/y on disk shows x escapes.
    "symlink-chain": _tar(
        {"x/evil.txt": b"x"},
        extra=(
            _info("sub", type=tarfile.DIRTYPE, mode=0o755),
            _info("sub/y", type=tarfile.SYMTYPE, linkname=".."),
            _info("x", type=tarfile.SYMTYPE, linkname="sub/y/../.."),
        ),
    ),
}


EVIL_MEMBER = {"dotdot": "../evil.txt", "absolute": "/tmp/segcore-evil.txt", "symlink": "VOCdevkit/etc",
               "symlink-up": "VOCdevkit/up", "hardlink": "passwd", "device": "null",
               "symlink-chain": "x"}


class _Handler(BaseHTTPRequestHandler):
    """Serves server.routes: path -> (kind, payload); records (path, Range) per request."""

    def log_message(self, format, *args):  # keep pytest output clean
        pass

    def _send(self, code: int, body: bytes, headers: dict | None = None, length: int | None = None):
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        rng = self.headers.get("Range")
        self.server.requests.append((self.path, rng))
        kind, payload = self.server.routes.get(self.path, ("missing", b""))
        if kind == "missing":
            self._send(404, b"not found")
        elif kind == "redirect":
            self._send(302, b"", {"Location": payload})
        elif kind == "truncate":  # promise everything, send half, hang up
            self._send(200, payload[: len(payload) // 2], length=len(payload))
        elif kind == "nolength":  # no Content-Length: only the expected size reveals the cut
            self.send_response(200)
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2])
        elif kind == "norange" or rng is None:
            self._send(200, payload)
        else:
            start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
            if start >= len(payload):
                self._send(416, b"", {"Content-Range": f"bytes */{len(payload)}"})
            else:
                span = f"bytes {start}-{len(payload) - 1}/{len(payload)}"
                self._send(206, payload[start:], {"Content-Range": span})


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """A proxy from the environment must not intercept requests to 127.0.0.1."""
    for var in [v for v in __import__("os").environ if v.lower().endswith("_proxy")]:
        monkeypatch.delenv(var)


@pytest.fixture(scope="module")
def _running_server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def server(_running_server):
    """The shared server with fresh routes and an empty request log."""
    srv = _running_server
    srv.requests = []
    srv.routes = {
        "/good.tar": ("file", GOOD),
        "/norange.tar": ("norange", GOOD),
        "/corrupt.tar": ("file", CORRUPT),
        "/truncated.tar": ("truncate", GOOD),
        "/nolength.tar": ("nolength", GOOD),
        "/r1": ("redirect", "/r2"),
        "/r2": ("redirect", "/good.tar"),
        **{f"/evil-{k}.tar": ("file", v) for k, v in EVIL.items()},
    }
    return srv


@pytest.fixture
def closed_url() -> str:
    """A URL on a port nothing listens on: connection refused, like being offline."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/VOCtrainval_11-May-2012.tar"


def _voc(url: str, md5: str | None = _md5(GOOD)) -> Archive:
    return dataclasses.replace(CATALOG["voc2012"], url=url, md5=md5, size=None)


def _leftovers(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*")) if path.exists() else []


# ---------------------------------------------------------------- fetch


def test_catalog_holds_published_facts():
    assert CATALOG["voc2012"].md5 == "6cd6e144f989b92b3379bac3b3de84fd"
    assert CATALOG["voc2012"].size == 1_999_639_040
    assert CATALOG["voc2011"].md5 == "6c3384ef61512963050cb5d687e5bf1e"
    assert CATALOG["voc2011"].extracts_to == "TrainVal/VOCdevkit/VOC2011"
    assert CATALOG["sbd"].md5 == "82b4d87ceb2ed10f6038a1cba92111cb"
    assert CATALOG["sbd"].size == 1_419_539_633
    assert CATALOG["sbd"].url.endswith("semantic_contours/benchmark.tgz")
    assert all(key == a.name for key, a in CATALOG.items())


@pytest.mark.parametrize("path", ["/good.tar", "/r1"])
def test_fetch_downloads_verifies_and_follows_redirects(server, tmp_path, path):
    dest = fetch(server.base + path, tmp_path / "a.tar", md5=_md5(GOOD), size=len(GOOD), progress=False)
    assert dest.read_bytes() == GOOD
    assert not (tmp_path / "a.tar.part").exists()


def test_fetch_resumes_partial_download_with_range(server, tmp_path):
    half = len(GOOD) // 2
    (tmp_path / "a.tar.part").write_bytes(GOOD[:half])
    # progress=True here so the tqdm path (starting at `initial`) is exercised once.
    dest = fetch(server.base + "/good.tar", tmp_path / "a.tar", md5=_md5(GOOD), progress=True)
    assert dest.read_bytes() == GOOD
    assert server.requests == [("/good.tar", f"bytes={half}-")]


def test_a_download_in_a_log_says_where_it_is(server, tmp_path, monkeypatch, capsys):
    """Off a terminal the transfer prints the shared progress lines (segcore.core.progress), resumed
    bytes counted as done; with a length the total is shown, without one the amount so far."""
    from segcore.core import progress

    monkeypatch.setattr(progress, "EVERY_S", 0.0)  # a line at every chunk
    (tmp_path / "a.tar.part").write_bytes(GOOD[:100])
    fetch(server.base + "/good.tar", tmp_path / "a.tar", md5=_md5(GOOD), chunk=1000, progress=True)
    total = f"{len(GOOD) / 2 ** 20:.1f} MB"
    assert f"download a.tar: 0.0/{total}, " in capsys.readouterr().out
    with pytest.raises(DownloadError):  # this route sends half the file without a length: the lines came first
        fetch(server.base + "/nolength.tar", tmp_path / "b.tar", md5=_md5(GOOD), chunk=1000, progress=True)
    assert "download b.tar: 0.0 MB, 0 s elapsed\n" in capsys.readouterr().out


def test_fetch_restarts_when_server_ignores_range(server, tmp_path):
    (tmp_path / "a.tar.part").write_bytes(b"junk" * 100)
    dest = fetch(server.base + "/norange.tar", tmp_path / "a.tar", md5=_md5(GOOD), progress=False)
    assert dest.read_bytes() == GOOD


@pytest.mark.parametrize("part", [GOOD, GOOD + b"junk"], ids=["complete", "too-long"])
def test_fetch_handles_416(server, tmp_path, part):
    (tmp_path / "a.tar.part").write_bytes(part)
    dest = fetch(server.base + "/good.tar", tmp_path / "a.tar", md5=_md5(GOOD), progress=False)
    assert dest.read_bytes() == GOOD
    assert server.requests[0] == ("/good.tar", f"bytes={len(part)}-")


def test_fetch_corrupt_download_is_deleted(server, tmp_path):
    url = server.base + "/corrupt.tar"
    with pytest.raises(DownloadError) as err:
        fetch(url, tmp_path / "a.tar", md5=_md5(GOOD), progress=False)
    msg = str(err.value)
    assert url in msg and _md5(GOOD) in msg and _md5(CORRUPT) in msg and "\n" not in msg
    assert _leftovers(tmp_path) == []


def test_fetch_truncated_transfer_keeps_part_and_resumes(server, tmp_path):
    url = server.base + "/truncated.tar"
    with pytest.raises(DownloadError, match="rerun to resume"):
        fetch(url, tmp_path / "a.tar", md5=_md5(GOOD), progress=False)
    assert (tmp_path / "a.tar.part").stat().st_size == len(GOOD) // 2
    server.routes["/truncated.tar"] = ("file", GOOD)  # connection is healthy again
    fetch(url, tmp_path / "a.tar", md5=_md5(GOOD), progress=False)
    assert (tmp_path / "a.tar").read_bytes() == GOOD
    assert server.requests[-1] == ("/truncated.tar", f"bytes={len(GOOD) // 2}-")


def test_fetch_short_transfer_without_length_keeps_part(server, tmp_path):
    with pytest.raises(DownloadError, match="rerun to resume"):
        fetch(server.base + "/nolength.tar", tmp_path / "a.tar", md5=_md5(GOOD), size=len(GOOD),
              progress=False)
    assert (tmp_path / "a.tar.part").stat().st_size == len(GOOD) // 2


def test_fetch_offline_names_url_and_where_to_place_file(closed_url, tmp_path):
    dest = tmp_path / "dl" / "VOCtrainval_11-May-2012.tar"
    with pytest.raises(DownloadError) as err:
        fetch(closed_url, dest, md5="6cd6e144f989b92b3379bac3b3de84fd", timeout=5, progress=False)
    msg = str(err.value)
    assert closed_url in msg and str(dest) in msg and "6cd6e144f989b92b3379bac3b3de84fd" in msg
    assert "by hand" in msg


def test_fetch_http_error_names_status(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(server.base + "/nope.tar", tmp_path / "a.tar", md5=None, progress=False)


def test_fetch_rejects_wrong_size(server, tmp_path):
    with pytest.raises(DownloadError, match=f"expected {len(GOOD) - 1}"):
        fetch(server.base + "/good.tar", tmp_path / "a.tar", md5=None, size=len(GOOD) - 1,
              progress=False)


# ---------------------------------------------------------------- ensure / hand-placed files


def test_ensure_downloads_extracts_then_reuses(server, tmp_path):
    archive = _voc(server.base + "/good.tar")
    target = ensure(archive, tmp_path / "dl", tmp_path / "data", progress=False)
    assert target == tmp_path / "data" / "VOCdevkit" / "VOC2012"
    assert (target / "ImageSets/Segmentation/train.txt").read_bytes() == VOC_FILES[
        "VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt"
    ]
    n = len(server.requests)
    assert ensure(archive, tmp_path / "dl", tmp_path / "data", progress=False) == target
    assert len(server.requests) == n  # already extracted: no network
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # temp dir gone


def test_hand_placed_archive_used_without_network(closed_url, tmp_path):
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "VOCtrainval_11-May-2012.tar").write_bytes(GOOD)
    target = ensure(_voc(closed_url), tmp_path / "dl", tmp_path / "data", progress=False)
    assert (target / "JPEGImages" / "2007_000032.jpg").exists()


def test_hand_placed_corrupt_archive_rejected(closed_url, tmp_path):
    placed = tmp_path / "dl" / "VOCtrainval_11-May-2012.tar"
    placed.parent.mkdir()
    placed.write_bytes(CORRUPT)
    with pytest.raises(DownloadError) as err:
        ensure(_voc(closed_url), tmp_path / "dl", tmp_path / "data", progress=False)
    msg = str(err.value)
    assert str(placed) in msg and _md5(GOOD) in msg and _md5(CORRUPT) in msg and "delete it" in msg
    assert not (tmp_path / "data").exists()


def test_ensure_gz_with_extra_top_folder_and_merge(tmp_path):
    files = {"TrainVal/VOCdevkit/VOC2011/ImageSets/Segmentation/val.txt": b"2007_000033\n"}
    data = _tar(files, mode="w:gz")
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "VOCtrainval_25-May-2011.tar").write_bytes(data)
    (tmp_path / "data" / "TrainVal" / "VOCdevkit" / "VOC2007").mkdir(parents=True)  # existing sibling
    archive = dataclasses.replace(CATALOG["voc2011"], url="http://127.0.0.1:9/x", md5=_md5(data))
    target = ensure(archive, tmp_path / "dl", tmp_path / "data", progress=False)
    assert (target / "ImageSets/Segmentation/val.txt").exists()
    assert (tmp_path / "data" / "TrainVal" / "VOCdevkit" / "VOC2007").is_dir()


def test_ensure_reports_missing_layout(tmp_path):
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "benchmark.tgz").write_bytes(GOOD)  # a VOC tar where SBD is expected
    archive = dataclasses.replace(CATALOG["sbd"], url="http://127.0.0.1:9/x", md5=_md5(GOOD), size=None)
    with pytest.raises(DownloadError, match="benchmark_RELEASE/dataset is missing"):
        ensure(archive, tmp_path / "dl", tmp_path / "data", progress=False)


def test_ensure_unpinned_archive_needs_record_file(server, tmp_path):
    archive = _voc(server.base + "/good.tar", md5=None)
    with pytest.raises(ValueError, match="record_file"):
        ensure(archive, tmp_path / "dl", tmp_path / "data", progress=False)
    record = tmp_path / "checksums.json"
    ensure(archive, tmp_path / "dl", tmp_path / "data", progress=False, record_file=record)
    pinned = json.loads(record.read_text())["VOCtrainval_11-May-2012.tar"]
    assert pinned == {"size": len(GOOD), "sha256": hashlib.sha256(GOOD).hexdigest()}


# ---------------------------------------------------------------- extraction


@pytest.mark.parametrize("kind", sorted(EVIL))
def test_path_escaping_archives_rejected(server, tmp_path, kind):
    root = tmp_path / "a" / "b" / "data"  # deep, so an escape would still land in tmp_path
    archive = _voc(server.base + f"/evil-{kind}.tar", md5=_md5(EVIL[kind]))
    with pytest.raises(DownloadError) as err:
        ensure(archive, tmp_path / "dl", root, progress=False)
    msg = str(err.value)
    assert "unsafe member" in msg and repr(EVIL_MEMBER[kind]) in msg
    assert "VOCtrainval_11-May-2012.tar" in msg
    assert _leftovers(tmp_path / "a") == [tmp_path / "a" / "b"]  # no root, no temp dir, no escape
    assert not Path("/tmp/segcore-evil.txt").exists()


@pytest.mark.parametrize(
    "data",
    [GOOD[: len(GOOD) // 2], _tar(VOC_FILES, "w:gz")[:-40], b"not an archive"],
    ids=["plain-truncated", "gz-truncated", "garbage"],
)
def test_corrupt_archive_leaves_nothing_in_root(tmp_path, data):
    (tmp_path / "x.tar").write_bytes(data)
    with pytest.raises(DownloadError, match=re.escape(str(tmp_path / "x.tar"))):
        safe_extract(tmp_path / "x.tar", tmp_path / "data")
    assert _leftovers(tmp_path) == [tmp_path / "x.tar"]


def test_zip_archives_are_supported_and_checked(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in VOC_FILES.items():
            zf.writestr(name, data)
    (tmp_path / "ok.zip").write_bytes(buf.getvalue())
    safe_extract(tmp_path / "ok.zip", tmp_path / "data")
    assert (tmp_path / "data" / "VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt").exists()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../evil.txt", b"x")
    (tmp_path / "evil.zip").write_bytes(buf.getvalue())
    with pytest.raises(DownloadError, match=r"'\.\./evil\.txt'.*evil\.zip"):
        safe_extract(tmp_path / "evil.zip", tmp_path / "data2")
    assert not (tmp_path / "data2").exists() and not (tmp_path / "evil.txt").exists()


# ---------------------------------------------------------------- unpublished checksums


def test_verify_or_record_pins_first_download(tmp_path):
    f, record = tmp_path / "SiftFlowDataset.zip", tmp_path / "pins" / "checksums.json"
    f.write_bytes(b"first")
    first = verify_or_record(f, record)
    assert first == {"size": 5, "sha256": hashlib.sha256(b"first").hexdigest()}
    assert verify_or_record(f, record) == first
    f.write_bytes(b"other")
    with pytest.raises(DownloadError, match="recorded"):
        verify_or_record(f, record)
