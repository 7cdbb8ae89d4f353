"""Nothing lost, nothing stuck (issue 12): downloads, installs, readers and the stand-in cache under faults.

Faults are real where they can be produced offline: a local HTTP server sends login pages,
bodies cut short and changed files; TIFF, GIF and NIfTI files are written with Pillow and
nibabel; processes are killed with SIGKILL and SIGTERM. Only a full disk is injected (an
``OSError(ENOSPC)`` from the writer), because filling a real disk is not safe in a test.
"""

import codecs
import errno
import io
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from bl_tutorial._io import atomic_directory, clear_unfinished
from bl_tutorial.data import ensure_dataset, read_drive, sources, synthetic
from bl_tutorial.data.acdc import read_info, read_nifti
from bl_tutorial.data.download import download, download_acdc, extract_zip, install_drive_zip

SMALL_ACDC = synthetic.AcdcStandinConfig(n_training=2, n_test=1, seed=0)
ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(scope="module")
def drive_tree(tmp_path_factory):
    config = synthetic.DriveStandinConfig(n_training=1, n_test=1, seed=0)
    return synthetic.write_drive_standin(tmp_path_factory.mktemp("drive"), config)


@pytest.fixture
def small_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(sources.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(sources.DATA_ENV, raising=False)
    monkeypatch.setitem(sources.DATASETS, "acdc", replace(sources.DATASETS["acdc"], standin=SMALL_ACDC))
    return tmp_path / "cache"


def _zip_tree(tree: Path, archive: Path, skip: str | None = None) -> Path:
    """Zip ``tree`` under a top folder ``DRIVE/`` like the official archive, leaving out sub-folders named ``skip``."""
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(tree.rglob("*")):
            if path.is_file() and skip not in path.relative_to(tree).parts:
                zipped.write(path, Path("DRIVE") / path.relative_to(tree))
    return archive


def _acdc_zip() -> bytes:
    """A small archive in the ACDC layout (one patient), with enough bytes to cut a download in the middle."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("ACDC/database/training/patient001/Info.cfg", "ED: 1\nES: 12\nGroup: NOR\n")
        zipped.writestr("ACDC/database/training/patient001/padding.bin", np.random.default_rng(0).bytes(200_000))
    return buffer.getvalue()


# ============================================================== item 5: downloads
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


# ============================================================== item 6: installing the DRIVE zip
def test_install_drive_zip_recovers_from_an_incomplete_zip(drive_tree, tmp_path):
    data = tmp_path / "data"
    incomplete = _zip_tree(drive_tree, tmp_path / "incomplete.zip", skip="mask")
    with pytest.raises(FileNotFoundError, match="incomplete.zip.*mask"):
        install_drive_zip(incomplete, data)
    assert not (data / "DRIVE").exists() and not list(data.glob(".tmp-*"))
    tree = install_drive_zip(_zip_tree(drive_tree, tmp_path / "DRIVE.zip"), data)
    assert [s.id for s in read_drive(tree)] == ["21"] and tree == data / "DRIVE" / "DRIVE"


# ============================================================== item 7: silent wrong reads
def _copy(tree: Path, dst: Path) -> Path:
    return Path(shutil.copytree(tree, dst))


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_tiffs_with_more_than_8_bits_are_refused(drive_tree, tmp_path, dtype):
    tree = _copy(drive_tree, tmp_path / "d")
    ramp = np.linspace(0, 4000 if dtype == np.uint16 else 1, 584 * 565).reshape(584, 565).astype(dtype)
    Image.fromarray(ramp).save(tree / "training/images/21_training.tif")
    with pytest.raises(ValueError, match="21_training.tif.*8-bit"):
        read_drive(tree)


def test_a_zero_voxel_size_is_refused(tmp_path):
    image = nib.Nifti1Image(np.zeros((4, 4, 3), np.int16), np.diag([1.5, 1.5, 10.0, 1.0]))
    image.header["pixdim"][1:4] = [1.5, 0.0, 10.0]  # nibabel reads a 0 as 1 mm
    nib.save(image, str(tmp_path / "v.nii.gz"))
    with pytest.raises(ValueError, match=r"v.nii.gz.*pixdim.*0"):
        read_nifti(tmp_path / "v.nii.gz")


def test_an_inverted_field_of_view_is_refused(drive_tree, tmp_path):
    tree = _copy(drive_tree, tmp_path / "d")
    mask = tree / "training/mask/21_training_mask.gif"
    inverted = 255 - np.asarray(Image.open(mask).convert("L"))
    Image.fromarray(inverted).save(mask)
    with pytest.raises(ValueError, match="21_training_mask.gif.*inverted"):
        read_drive(tree)


# ============================================================== item 8: clear messages
def test_info_cfg_with_a_byte_order_mark_or_in_utf16_or_not_utf8(tmp_path):
    path = tmp_path / "Info.cfg"
    path.write_bytes(codecs.BOM_UTF8 + b"ED: 1\nES: 12\nGroup: NOR\n")
    assert read_info(path)["ED"] == 1
    path.write_bytes("ED: 1\nES: 12\n".encode("utf-16"))  # Windows "Unicode" text
    assert read_info(path)["ES"] == 12
    path.write_bytes(b"ED: 1\nES: 12\nGroup: caf\xe9\n")
    with pytest.raises(ValueError, match="Info.cfg.*UTF-8"):
        read_info(path)


def test_macos_appledouble_files_are_skipped(drive_tree, tmp_path):
    tree = _copy(drive_tree, tmp_path / "d")
    (tree / "training/images/._21_training.tif").write_bytes(b"\x00\x05\x16\x07" + bytes(300))
    assert [s.id for s in read_drive(tree)] == ["21"]


def test_a_cache_path_that_is_a_file_names_the_variable(small_cache, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(sources.CACHE_ENV, str(blocker))
    with pytest.raises(NotADirectoryError, match=f"{blocker}.*{sources.CACHE_ENV}"):
        ensure_dataset("acdc")


@pytest.mark.skipif(ROOT_USER, reason="root may write to read-only folders")
def test_a_read_only_cache_names_the_variable(small_cache):
    small_cache.mkdir()
    small_cache.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match=f"{small_cache}.*{sources.CACHE_ENV}"):
            ensure_dataset("acdc")
    finally:
        small_cache.chmod(0o755)


def test_disk_full_while_generating_cleans_up_and_says_so(small_cache, monkeypatch):
    def fill_the_disk(root, config):
        (Path(root) / "training").mkdir()
        (Path(root) / "training" / "part.bin").write_bytes(bytes(1000))
        raise OSError(errno.ENOSPC, "No space left on device", str(Path(root) / "training" / "next.bin"))

    monkeypatch.setitem(sources.DATASETS, "acdc", replace(sources.DATASETS["acdc"], write_standin=fill_the_disk))
    with pytest.raises(OSError, match=f"space.*{small_cache}.*{sources.CACHE_ENV}") as caught:
        ensure_dataset("acdc")
    assert caught.value.errno == errno.ENOSPC
    assert list(small_cache.iterdir()) == []


# ============================================================== item 9: permissions follow the umask
def test_created_folders_follow_the_umask(small_cache, drive_tree, tmp_path):
    archive = _zip_tree(drive_tree, tmp_path / "DRIVE.zip")
    old = os.umask(0o022)
    try:
        folders = [ensure_dataset("acdc").root, extract_zip(archive, tmp_path / "x")]
        install_drive_zip(archive, tmp_path / "data")
        folders += [small_cache, tmp_path / "data" / "DRIVE", tmp_path / "data" / "DRIVE" / "DRIVE" / "training"]
    finally:
        os.umask(old)
    assert {folder: oct(stat.S_IMODE(folder.stat().st_mode)) for folder in folders} == dict.fromkeys(folders, "0o755")


# ============================================================== item 10: interrupted runs
SLOW_GENERATION = textwrap.dedent(
    """
    import time
    from dataclasses import replace
    from bl_tutorial.data import ensure_dataset, sources, synthetic

    def slow(root, config):
        print("writing", flush=True)
        time.sleep(300)

    small = synthetic.AcdcStandinConfig(n_training=2, n_test=1, seed=0)
    sources.DATASETS["acdc"] = replace(sources.DATASETS["acdc"], write_standin=slow, standin=small)
    ensure_dataset("acdc")
    """
)

SLOW_WORKERS = textwrap.dedent(
    """
    import multiprocessing, threading, time
    from bl_tutorial.data.synthetic import _map_parallel

    def report():
        while len(multiprocessing.active_children()) < 2:
            time.sleep(0.05)
        print(*[p.pid for p in multiprocessing.active_children()], flush=True)

    threading.Thread(target=report, daemon=True).start()
    list(_map_parallel(time.sleep, [300, 300]))
    """
)


def _start(script: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting to be reaped counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.is_file() and status.read_text().rsplit(")", 1)[1].split()[0] == "Z")


@pytest.mark.parametrize("signal_number", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_generation_leaves_nothing_that_lasts(small_cache, signal_number):
    child = _start(SLOW_GENERATION, {**os.environ, sources.CACHE_ENV: str(small_cache)})
    assert child.stdout.readline().strip() == "writing"
    child.send_signal(signal_number)
    child.wait(timeout=60)
    assert list(small_cache.glob(".tmp-*"))  # what a killed process leaves behind...
    assert (ensure_dataset("acdc").root / sources.STANDIN_MARKER).is_file()
    assert not list(small_cache.glob(".tmp-*"))  # ... the next run removes


@pytest.mark.parametrize("signal_number", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_workers_end_when_their_parent_is_killed(signal_number):
    child = _start(SLOW_WORKERS)
    workers = [int(pid) for pid in child.stdout.readline().split()]
    try:
        assert len(workers) == 2
        child.send_signal(signal_number)
        child.wait(timeout=60)
        deadline = time.monotonic() + 10
        while any(map(_running, workers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(map(_running, workers))
    finally:
        for pid in workers:  # only on failure: do not leave them asleep
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_finished_tree_is_never_removed(small_cache, tmp_path, monkeypatch):
    """Process A finds an unfinished tree; right after its check, another process puts a finished one in place."""
    final = small_cache / f"acdc-standin-v{synthetic.GENERATOR_VERSION}-seed0-2x1"
    (final / "training").mkdir(parents=True)  # unfinished: no marker (an older version, a copy...)
    monkeypatch.setenv(sources.CACHE_ENV, str(tmp_path / "elsewhere"))
    finished = ensure_dataset("acdc").root
    (finished / "being-read").touch()
    monkeypatch.setenv(sources.CACHE_ENV, str(small_cache))
    real_is_file, swapped = Path.is_file, []

    def is_file_then_pause(path):
        answer = real_is_file(path)
        if path == final / sources.STANDIN_MARKER and not answer and not swapped:
            os.replace(final, tmp_path / "set-aside-by-the-other-process")
            os.replace(finished, final)
            swapped.append(True)
        return answer

    monkeypatch.setattr(Path, "is_file", is_file_then_pause)
    assert ensure_dataset("acdc").root == final
    monkeypatch.undo()
    assert swapped and (final / "being-read").is_file()


def test_clear_unfinished_puts_back_a_tree_finished_meanwhile(tmp_path):
    target = tmp_path / "tree"
    (target / "half").mkdir(parents=True)
    finished = tmp_path / "finished"
    (finished / "DONE").mkdir(parents=True)
    looks = []

    def is_finished(path):
        looks.append(path)
        answer = (path / "DONE").exists()
        if len(looks) == 1:  # between this look and the move, another process swaps in its finished tree
            os.replace(target, tmp_path / "moved-by-the-other-process")
            os.replace(finished, target)
        return answer

    assert clear_unfinished(target, is_finished) is True
    assert (target / "DONE").is_dir() and not list(tmp_path.glob(".old-*"))
    assert clear_unfinished(tmp_path / "moved-by-the-other-process", is_finished) is False
    assert not (tmp_path / "moved-by-the-other-process").exists()


def test_stale_staging_of_a_dead_process_is_removed(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    stale = tmp_path / f".tmp-tree-pid{child.pid}@{_host()}-abc123"
    stale.mkdir()
    old = tmp_path / ".tmp-tree-xyz"  # no owner in the name (older version): removed once old enough
    old.mkdir()
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    young = tmp_path / ".tmp-tree-young"
    young.mkdir()
    with atomic_directory(tmp_path / "tree") as staging:
        (staging / "file").touch()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".tmp-tree-young", "tree"]


def _host() -> str:
    from bl_tutorial._io import _host_name

    return _host_name()
