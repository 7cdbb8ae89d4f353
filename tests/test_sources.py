"""ensure_dataset and the stand-in cache: generated once, versioned, atomic, and safe under faults (real
faults where they can be made offline: processes killed with SIGKILL and SIGTERM; a full disk is injected)."""

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from bl_tutorial._io import _host_name, atomic_directory, clear_unfinished
from bl_tutorial.data import (
    ensure_dataset,
    read_acdc,
    sources,
    synthetic,
)
from bl_tutorial.data.download import extract_zip, install_drive_zip
from conftest import copy_tree, zip_tree


def test_ensure_dataset_generates_once_and_reports_standin(small_cache):
    first = ensure_dataset("acdc")
    assert first.kind == "stand-in" and "stand-in" in first.describe() and "generator v" in str(first)
    marker = json.loads((first.root / sources.STANDIN_MARKER).read_text())
    assert marker["generator_version"] == synthetic.GENERATOR_VERSION
    stamp = (first.root / "training/patient001/Info.cfg").stat().st_mtime_ns
    second = ensure_dataset("acdc")
    assert second.root == first.root
    assert (second.root / "training/patient001/Info.cfg").stat().st_mtime_ns == stamp
    assert len(read_acdc(second)) == 2  # usable as a path


def test_ensure_dataset_regenerates_after_a_version_change(small_cache, monkeypatch):
    old = ensure_dataset("acdc").root
    monkeypatch.setattr(synthetic, "GENERATOR_VERSION", synthetic.GENERATOR_VERSION + 1)
    new = ensure_dataset("acdc").root
    assert new != old and (new / sources.STANDIN_MARKER).is_file()


def test_interrupted_generation_leaves_no_tree(small_cache, monkeypatch):
    def crash(root, config):
        (Path(root) / "training").mkdir()
        raise KeyboardInterrupt

    monkeypatch.setitem(sources.DATASETS, "acdc", replace(sources.DATASETS["acdc"], write_standin=crash))
    with pytest.raises(KeyboardInterrupt):
        ensure_dataset("acdc")
    assert not any(p for p in small_cache.iterdir() if p.name.startswith("acdc"))
    assert not any(small_cache.glob(".tmp-*"))


def test_partial_final_folder_is_not_taken_as_complete(small_cache, monkeypatch):
    monkeypatch.setenv(sources.CACHE_ENV, str(small_cache))
    name = f"acdc-standin-v{synthetic.GENERATOR_VERSION}-seed0-2x1"
    (small_cache / name / "training").mkdir(parents=True)
    source = ensure_dataset("acdc")
    assert source.root.name == name and len(read_acdc(source)) == 2


def test_ensure_dataset_real_roots(small_cache, acdc_tree, drive_tree, tmp_path, monkeypatch):
    real = copy_tree(acdc_tree, tmp_path / "data" / "ACDC" / "database")
    found = ensure_dataset("acdc", tmp_path / "data")
    assert found.kind == "real" and found.root == real
    monkeypatch.setenv(sources.DATA_ENV, str(tmp_path / "data"))
    assert ensure_dataset("acdc").is_real
    drive = ensure_dataset("drive")  # the variable holds no DRIVE: a stand-in, and it says why
    assert drive.kind == "stand-in" and "holds no DRIVE" in drive.note
    with pytest.raises(FileNotFoundError, match="official layout"):
        ensure_dataset("drive", tmp_path / "data")
    with pytest.raises(ValueError, match="name must be one of"):
        ensure_dataset("isles")
    nested = copy_tree(drive_tree, tmp_path / "dl" / "DRIVE" / "DRIVE")
    assert ensure_dataset("drive", tmp_path / "dl").root in (nested, tmp_path / "dl" / "DRIVE")


ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0


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


def test_created_folders_follow_the_umask(small_cache, drive_tree, tmp_path):
    archive = zip_tree(drive_tree, tmp_path / "DRIVE.zip")
    old = os.umask(0o022)
    try:
        folders = [ensure_dataset("acdc").root, extract_zip(archive, tmp_path / "x")]
        install_drive_zip(archive, tmp_path / "data")
        folders += [small_cache, tmp_path / "data" / "DRIVE", tmp_path / "data" / "DRIVE" / "DRIVE" / "training"]
    finally:
        os.umask(old)
    assert {folder: oct(stat.S_IMODE(folder.stat().st_mode)) for folder in folders} == dict.fromkeys(folders, "0o755")


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
    stale = tmp_path / f".tmp-tree-pid{child.pid}@{_host_name()}-abc123"
    stale.mkdir()
    old = tmp_path / ".tmp-tree-xyz"  # no owner in the name (older version): removed once old enough
    old.mkdir()
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    young = tmp_path / ".tmp-tree-young"
    young.mkdir()
    with atomic_directory(tmp_path / "tree") as staging:
        (staging / "file").touch()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".tmp-tree-young", "tree"]
