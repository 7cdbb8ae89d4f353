"""Downloads and installs against a local HTTP server: login pages, bodies cut short, changed files,
resumes, checksums, and archives unpacked atomically."""

import io
import os
import threading
import zipfile
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bl_tutorial.data import (
    read_drive,
)
from bl_tutorial.data.download import download, download_acdc, extract_zip, install_drive_zip
from conftest import zip_tree


class _RangeHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        data = path.read_bytes()
        start = 0
        if "Range" in self.headers:
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            self.send_response(206)
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture
def server(tmp_path):
    folder = tmp_path / "served"
    folder.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_RangeHandler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_download_verifies_and_renames(server, tmp_path):
    """Resuming is tested in test_robustness.py; here a .part without a record of the remote file is not trusted."""
    import hashlib

    folder, url = server
    payload = np.random.default_rng(0).bytes(300_000)
    (folder / "f.bin").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    dest = tmp_path / "out" / "f.bin"
    dest.parent.mkdir()
    (tmp_path / "out" / "f.bin.part").write_bytes(b"?" * 100_000)  # of unknown origin: the download starts again
    assert download(f"{url}/f.bin", dest, digest, progress=False) == dest
    assert dest.read_bytes() == payload and not (tmp_path / "out" / "f.bin.part").exists()
    other = tmp_path / "out" / "g.bin"
    with pytest.raises(ValueError, match="checksum mismatch"):
        download(f"{url}/f.bin", other, "0" * 64, progress=False)
    assert not other.exists() and not (tmp_path / "out" / "g.bin.part").exists()


def test_download_offline_says_what_to_do(tmp_path):
    with pytest.raises(ConnectionError, match="offline"):
        download("http://127.0.0.1:9/none.zip", tmp_path / "x.zip", progress=False, timeout=2)
    assert not (tmp_path / "x.zip").exists()


def test_extract_zip_is_atomic(tmp_path):
    import zipfile

    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("training/images/21_training.tif", b"x")
    assert (extract_zip(archive, tmp_path / "x") / "training/images/21_training.tif").is_file()
    broken = tmp_path / "b.zip"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a valid zip"):
        extract_zip(broken, tmp_path / "y")
    assert not (tmp_path / "y").exists() and not list(tmp_path.glob(".tmp-*"))


def _acdc_zip() -> bytes:
    """A small archive in the ACDC layout (one patient), with enough bytes to cut a download in the middle."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("ACDC/database/training/patient001/Info.cfg", "ED: 1\nES: 12\nGroup: NOR\n")
        zipped.writestr("ACDC/database/training/patient001/padding.bin", np.random.default_rng(0).bytes(200_000))
    return buffer.getvalue()


class _CraftedHandler(BaseHTTPRequestHandler):
    """Serves ``server.remote``: one body, with the headers and faults a test asks for (HTTP/1.0)."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        remote = self.server.remote
        remote.requests.append(self.headers.get("Range"))
        body, start = remote.body, 0
        if self.headers.get("Range") and remote.ranges:
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", remote.content_type)
        if remote.etag:
            self.send_header("ETag", remote.etag)
        if remote.length:
            self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        data = body[start:]
        if remote.cut_after is not None:  # the connection drops: only the first bytes arrive, once
            data, remote.cut_after = data[: remote.cut_after], None
        self.wfile.write(data)


@pytest.fixture
def remote():
    state = SimpleNamespace(
        body=b"", content_type="application/zip", etag='"v1"', length=True, ranges=True, cut_after=None, requests=[]
    )
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _CraftedHandler)
    httpd.remote = state
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/acdc.zip"
    yield state
    httpd.shutdown()
    httpd.server_close()


def test_a_login_page_is_refused_and_not_kept(remote, tmp_path):
    remote.body, remote.content_type = b"<html><body>Please log in</body></html>", "text/html; charset=utf-8"
    data = tmp_path / "data"
    with pytest.raises(ValueError, match="text/html"):
        download_acdc(data, url=remote.url)
    assert not list(data.glob("acdc.zip*")) and not (data / "ACDC").exists()


def test_a_bad_archive_left_by_an_earlier_attempt_is_downloaded_again(remote, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "acdc.zip").write_bytes(b"<html><body>Please log in</body></html>")  # kept by an older version
    remote.body = _acdc_zip()
    assert (download_acdc(data, url=remote.url) / "training/patient001/Info.cfg").is_file()


def test_a_body_cut_short_without_a_length_is_discarded(remote, tmp_path):
    """Without Content-Length only the zip check can tell that the body is short: nothing is kept."""
    remote.body, remote.length = _acdc_zip(), False
    remote.cut_after = len(remote.body) // 2
    data = tmp_path / "data"
    with pytest.raises(ValueError, match="zip"):
        download_acdc(data, url=remote.url)
    assert not list(data.glob("acdc.zip*")) and not (data / "ACDC").exists()
    assert (download_acdc(data, url=remote.url) / "training/patient001/Info.cfg").is_file()


def test_an_interrupted_download_resumes(remote, tmp_path):
    remote.body, remote.cut_after = np.random.default_rng(1).bytes(100_000), 40_000
    dest = tmp_path / "f.bin"
    with pytest.raises(ConnectionError, match="run again to resume"):
        download(remote.url, dest, progress=False)
    assert not dest.exists()
    assert download(remote.url, dest, progress=False).read_bytes() == remote.body
    assert remote.requests == [None, "bytes=40000-"]


@pytest.mark.parametrize("change", ["etag", "size"])
def test_a_resume_onto_a_changed_file_starts_again(remote, tmp_path, change):
    rng = np.random.default_rng(2)
    remote.body, remote.cut_after = rng.bytes(100_000), 40_000
    remote.etag = '"v1"' if change == "etag" else None
    dest = tmp_path / "f.bin"
    with pytest.raises(ConnectionError, match="run again to resume"):
        download(remote.url, dest, progress=False)
    remote.body = rng.bytes(100_000 if change == "etag" else 120_000)  # the remote file changed meanwhile
    remote.etag = '"v2"' if change == "etag" else None
    assert download(remote.url, dest, progress=False).read_bytes() == remote.body


@pytest.mark.parametrize("length", [True, False], ids=["with-length", "without-length"])
def test_a_complete_part_file_is_finished(remote, tmp_path, monkeypatch, length):
    """Every byte arrived but the process died before the rename: the next call finishes (the server answers 416)."""
    remote.body, remote.length = np.random.default_rng(3).bytes(50_000), length
    dest = tmp_path / "f.bin"
    real_replace = os.replace

    def killed_before_the_rename(src, dst):
        if str(src).endswith(".part"):
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", killed_before_the_rename)
    with pytest.raises(KeyboardInterrupt):
        download(remote.url, dest, progress=False)
    monkeypatch.undo()
    assert (tmp_path / "f.bin.part").stat().st_size == len(remote.body) and not dest.exists()
    assert download(remote.url, dest, progress=False).read_bytes() == remote.body
    assert not list(tmp_path.glob("f.bin.part*"))


def test_install_drive_zip_recovers_from_an_incomplete_zip(drive_tree, tmp_path):
    data = tmp_path / "data"
    incomplete = zip_tree(drive_tree, tmp_path / "incomplete.zip", skip="mask")
    with pytest.raises(FileNotFoundError, match="incomplete.zip.*mask"):
        install_drive_zip(incomplete, data)
    assert not (data / "DRIVE").exists() and not list(data.glob(".tmp-*"))
    tree = install_drive_zip(zip_tree(drive_tree, tmp_path / "DRIVE.zip"), data)
    assert [s.id for s in read_drive(tree)] == [
        s.id for s in read_drive(drive_tree)
    ] and tree == data / "DRIVE" / "DRIVE"
