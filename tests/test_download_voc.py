"""The real download path of the VOC stage, end to end, on twin archives served from 127.0.0.1.

The archives have the published layouts (VOCtrainval tar -> VOCdevkit/VOC2012, the VOC2011 tar with
its extra TrainVal/ folder, benchmark.tgz -> benchmark_RELEASE/dataset); the loaders must read what
the download stage extracts, exactly as they read the twin written in place.
"""

import dataclasses
import functools
import hashlib
import http.server
import tarfile
import threading
from pathlib import Path

import pytest

from segcore.data import voc
from segcore.data.twin_voc import write_voc_twin
from segcore.data.download import CATALOG, DownloadError
from segcore.data.fetch import download_voc

ROOT = Path(__file__).resolve().parents[1]
TOPS = {"voc2012": "VOCdevkit", "voc2011": "TrainVal", "sbd": "benchmark_RELEASE"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Tar the twin per published archive, serve the folder over HTTP on 127.0.0.1."""
    tmp = tmp_path_factory.mktemp("served")
    twin = tmp / "twin"
    write_voc_twin(twin, seed=3, n_sbd_train=6, n_voc_train=3, n_voc_val=6, n_test=2, min_size=32, max_size=40)
    www = tmp / "www"
    www.mkdir()
    catalog = {}
    for key, top in TOPS.items():
        name = CATALOG[key].filename
        with tarfile.open(www / name, "w:gz" if name.endswith("gz") else "w") as tar:
            tar.add(twin / top, arcname=top)
        md5 = hashlib.md5((www / name).read_bytes()).hexdigest()
        catalog[key] = dataclasses.replace(CATALOG[key], url=f"/{name}", md5=md5, size=None)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield {k: dataclasses.replace(a, url=base + a.url) for k, a in catalog.items()}, twin
    server.shutdown()


def test_download_stage_real_path_gives_what_the_loaders_read(served, tmp_path):
    catalog, twin = served
    out = tmp_path / "data" / "voc"
    download_voc(None, out, tmp_path / "downloads", progress=False, catalog=catalog,
                 check_count=False)
    for split in ("sbd_train", "seg11valid", "voc2012_val", "voc2011_train"):
        got = [s.id for s in voc.split_samples(out, split)]
        assert got == [s.id for s in voc.split_samples(twin, split)]
        image, label = voc.read_sample(voc.split_samples(out, split)[0])
        assert image.shape[:2] == label.shape
    # On real data the seg11valid size is checked: the twin's is not 736.
    with pytest.raises(voc.DataError, match="736"):
        download_voc(None, out, tmp_path / "downloads", progress=False, catalog=catalog)


def test_offline_error_names_the_url_and_the_file_to_place(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    catalog = {k: dataclasses.replace(a, url=f"http://127.0.0.1:{port}/{a.filename}") for k, a in CATALOG.items()}
    with pytest.raises(DownloadError) as err:
        download_voc(None, tmp_path / "voc", tmp_path / "dl", progress=False, catalog=catalog)
    msg = str(err.value)
    assert f"127.0.0.1:{port}/VOCtrainval_11-May-2012.tar" in msg
    assert str(tmp_path / "dl" / "VOCtrainval_11-May-2012.tar") in msg
    assert not (tmp_path / "voc" / "VOCdevkit").exists()
