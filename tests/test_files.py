"""seqlight.files: atomic writes, permissions, leftovers of killed writers, one writer at a time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from seqlight.files import (
    LocalFileError,
    atomic_path,
    create_once,
    file_lock,
    remove_stale_temps,
)

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _python(code: str, *args: str, **kw) -> subprocess.Popen:
    """A child Python running ``code`` with seqlight importable (stdout piped)."""
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=env, stdout=subprocess.PIPE,
                            text=True, **kw)  # fmt: skip


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _host() -> str:
    from seqlight.files import _host

    return _host()


@pytest.fixture
def umask():
    """Set the process umask for one test, restored afterwards."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda m: os.umask(m)
    os.umask(old)


def _mode(p: Path) -> int:
    return p.stat().st_mode & 0o777


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_files_and_folders_get_the_umask_permissions(tmp_path, umask, mask):
    """mkstemp made every data file 0600: other users of a shared datasets/ could not read them."""
    from seqlight.data.imdb_synthetic import make_synthetic_acl_imdb
    from seqlight.data.jena_synthetic import write_jena_csv
    from seqlight.text import Tokenizer, write_glove

    umask(mask)
    with atomic_path(tmp_path / "a.bin") as tmp:
        tmp.write_bytes(b"x")
    with atomic_path(tmp_path / "folder", directory=True) as tmp:
        (tmp / "f.txt").write_text("y")
    assert _mode(tmp_path / "a.bin") == 0o666 & ~mask
    assert _mode(tmp_path / "folder") == 0o777 & ~mask
    # the writers built on it: the offline Jena CSV, the synthetic aclImdb, GloVe files and caches, tokenizers
    csv = write_jena_csv(tmp_path / "jena.csv", n_rows=20)
    acl = make_synthetic_acl_imdb(tmp_path / "imdb", n_per_class=2)
    glove = write_glove(tmp_path / "g.txt", ["a", "b"], np.eye(2))
    from seqlight.text import load_glove

    load_glove(glove)
    tok = Tokenizer()
    tok.fit_on_texts(["a b"])
    saved = tok.save(tmp_path / "tok.json")
    files = [csv, acl / "train" / "pos" / min(os.listdir(acl / "train" / "pos")), glove, saved,
             tmp_path / "g.txt.seqlight-cache.npy", tmp_path / "g.txt.seqlight-cache.json"]  # fmt: skip
    assert {str(f): _mode(f) for f in files} == {str(f): 0o666 & ~mask for f in files}
    assert {_mode(d) for d in (acl, acl / "train", acl / "train" / "pos")} == {0o777 & ~mask}


def test_a_failed_write_changes_nothing(tmp_path):
    dest = tmp_path / "d.txt"
    dest.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "dir", directory=True) as tmp:
        (tmp / "x").write_text("half")
        raise RuntimeError("interrupted")
    assert dest.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["d.txt"]


def test_a_disk_error_names_the_file_and_is_not_a_network_error(tmp_path):
    import errno

    from seqlight.data.download import DownloadError

    with pytest.raises(LocalFileError, match=r"could not write .*d\.bin: .*No space left.*local disk") as e, \
            atomic_path(tmp_path / "d.bin"):  # fmt: skip
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert e.value.errno == errno.ENOSPC and isinstance(e.value, OSError) and not isinstance(e.value, DownloadError)
    assert not os.listdir(tmp_path)


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    host, dead, alive = _host(), _dead_pid(), os.getppid()
    dest = tmp_path / "data.csv"
    names = {
        f".data.csv.{host}.{dead}.0a1b2c3d.part": True,  # a killed writer's file
        f".data.csv.{host}.{dead}.99999999.part/": True,  # a killed writer's folder (e.g. an unpacked archive)
        f".data.csv.{host}.{alive}.0a1b2c3d.part": False,  # a writer still at work
        f".data.csv.otherhost.{dead}.0a1b2c3d.part": False,  # another machine's, on a shared folder
        f".data.csv.zip.{host}.{dead}.0a1b2c3d.part": False,  # another file's (data.csv.zip)
        ".data.csv.abcd_123.part": True,  # an older seqlight's, untouched for two days
        ".data.csv.efgh_456.part": False,  # an older seqlight's, recent: its writer may be alive
    }
    for name in names:
        p = tmp_path / name.rstrip("/")
        p.mkdir() if name.endswith("/") else p.write_text("leftover")
        if name.startswith(".data.csv.abcd"):
            os.utime(p, (time.time() - 2 * 86400,) * 2)
    with atomic_path(dest) as tmp:  # a writer starting cleans up first
        tmp.write_text("new")
    left = set(os.listdir(tmp_path))
    assert {n.rstrip("/") for n, stale in names.items() if not stale} | {"data.csv"} == left
    assert remove_stale_temps(dest) == []


@pytest.mark.parametrize("directory", [False, True])
def test_a_writer_killed_mid_write_leaves_nothing_for_long(tmp_path, directory):
    """SIGKILL mid-write leaves a temporary (nothing can prevent that); the next writer removes it."""
    dest = tmp_path / ("aclImdb" if directory else "jena.csv")
    child = _python(
        """
        import sys, time
        from pathlib import Path
        from seqlight.files import atomic_path
        with atomic_path(Path(sys.argv[1]), directory=sys.argv[2] == "1") as tmp:
            (tmp / "part.txt" if tmp.is_dir() else tmp).write_bytes(b"x" * 100000)
            print("writing", flush=True)
            time.sleep(30)
        """,
        str(dest),
        "1" if directory else "0",
    )
    try:
        assert child.stdout.readline().strip() == "writing"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    leftovers = [n for n in os.listdir(tmp_path) if n.endswith(".part")]
    assert len(leftovers) == 1 and not dest.exists()
    with atomic_path(dest, directory=directory) as tmp:
        (tmp / "ok.txt" if directory else tmp).write_text("complete")
    assert os.listdir(tmp_path) == [dest.name]


def test_file_lock_excludes_other_processes_and_leaves_no_lock_file(tmp_path):
    log = tmp_path / "log"
    code = """
        import os, sys, time
        from pathlib import Path
        from seqlight.files import file_lock
        log = Path(sys.argv[1])
        for _ in range(3):
            with file_lock(log.with_name("shared.csv")):
                with open(log, "a") as f:
                    f.write(f"in {os.getpid()}\\n")
                time.sleep(0.05)
                with open(log, "a") as f:
                    f.write(f"out {os.getpid()}\\n")
        """
    children = [_python(code, str(log)) for _ in range(2)]
    for c in children:
        assert c.wait(30) == 0
    lines = log.read_text().split()
    events = list(zip(lines[0::2], lines[1::2]))
    assert len(events) == 12
    # never two holders at once: every "in" is followed by the same process's "out"
    assert all(events[i][0] == "in" and events[i + 1] == ("out", events[i][1]) for i in range(0, 12, 2))
    assert sorted(os.listdir(tmp_path)) == ["log"]  # the lock file went with its last holder


def test_file_lock_is_reentrant_in_a_thread(tmp_path):
    """extract_tar locks its target, and so may its caller: nesting must not deadlock."""
    import threading

    def nested():
        with file_lock(tmp_path / "x"), file_lock(tmp_path / "x"):
            pass

    t = threading.Thread(target=nested, daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive() and not os.listdir(tmp_path)


def test_create_once_makes_it_once_across_processes(tmp_path):
    """Two processes asking at once: one builds, the other waits and uses the result."""
    code = """
        import sys, time
        from pathlib import Path
        from seqlight.files import atomic_path, create_once
        dest, log, go = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
        while not go.exists():
            time.sleep(0.01)
        def make():
            with open(log, "a") as f:
                f.write("built\\n")
            with atomic_path(dest) as tmp:
                time.sleep(0.5)
                tmp.write_text("complete")
        create_once(dest, make)
        print(dest.read_text())
        """
    dest, log, go = tmp_path / "d.csv", tmp_path / "log", tmp_path / "go"
    children = [_python(code, str(dest), str(log), str(go)) for _ in range(2)]
    go.touch()
    outs = [c.communicate(timeout=30)[0].strip() for c in children]
    assert outs == ["complete", "complete"] and log.read_text() == "built\n"


def test_data_files_are_made_once_by_two_processes(tmp_path):
    """The offline Jena CSV and the synthetic aclImdb: two processes, one writer each (the CSV had no lock)."""
    code = """
        import sys, time, warnings
        from pathlib import Path
        import seqlight.data.imdb_synthetic as syn
        import seqlight.data.jena as jena
        data, log = Path(sys.argv[1]), Path(sys.argv[2])
        def logged(name, fn):
            def wrapper(*a, **k):
                with open(log, "a") as f:
                    f.write(name + "\\n")
                time.sleep(0.5)  # long enough for the other process to arrive meanwhile
                return fn(*a, **k)
            return wrapper
        jena.write_jena_csv = logged("jena", jena.write_jena_csv)
        syn._write_reviews = logged("imdb", syn._write_reviews)
        (data / f"ready{sys.argv[3]}").touch()
        while len(list(data.glob("ready*"))) < 2:
            time.sleep(0.01)
        dm = jena.JenaDataModule(data_dir=str(data), source="synthetic", synthetic_rows=300)
        dm.prepare_data()
        root = syn.make_synthetic_acl_imdb(data / "imdb_synthetic", n_per_class=3)
        print(len(jena.read_jena_csv(dm._csv).values), len(list((root / "train" / "pos").iterdir())))
        """
    data, log = tmp_path / "data", tmp_path / "log"
    data.mkdir()
    children = [_python(code, str(data), str(log), str(i)) for i in range(2)]
    outs = [c.communicate(timeout=120)[0].strip() for c in children]
    assert outs == ["300 3", "300 3"]
    assert sorted(log.read_text().split()) == ["imdb", "jena"]  # each written once
    assert not [n for n in os.listdir(data) if n.endswith((".part", ".lock"))]


def test_create_once_reads_a_complete_file_without_writing(tmp_path, monkeypatch):
    dest = tmp_path / "there.csv"
    dest.write_text("x")
    monkeypatch.setattr("seqlight.files.file_lock", None)  # would fail if a lock were taken
    assert create_once(dest, lambda: pytest.fail("rebuilt")) == dest
