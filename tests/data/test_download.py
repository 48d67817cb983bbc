"""Downloads never poison the cache: tested against a local server (127.0.0.1) that misbehaves on purpose."""

from __future__ import annotations

import errno
import hashlib
import http.server
import io
import os
import shutil
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import threading
import time
import warnings
import zipfile
from pathlib import Path

import pytest

import seqlight.data.download as download
from seqlight.data.download import DownloadError, extract_tar, fetch, tar_with_top, zip_with_member
from seqlight.data.jena_synthetic import generate_jena
from seqlight.files import LocalFileError

MEMBER = "jena_climate_2009_2016.csv"


def _csv_text(rows: int = 400) -> str:
    df = generate_jena(rows)
    return ",".join(f'"{c}"' for c in df.columns) + "\n" + df.to_csv(header=False, index=False, float_format="%.2f")


def _zip(text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MEMBER, text)
    return buf.getvalue()


CSV = _csv_text()
GOOD = _zip(CSV)


def _corrupt(body: bytes) -> bytes:
    b = bytearray(body)
    b[len(b) // 3] ^= 0xFF  # inside the deflated member: same length, wrong content
    return bytes(b)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.routes[path] = (behaviour, body)``; each behaviour is one way a download goes wrong."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        kind, body = self.server.routes.get(self.path, ("missing", b""))
        getattr(self, "_" + kind)(body)

    def _head(self, length: int | None, ctype: str = "application/zip", chunked: bool = False) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        if length is not None:
            self.send_header("Content-Length", str(length))
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def _full(self, body):
        self._head(len(body))
        self.wfile.write(body)

    def _cut(self, body):  # announces the whole length, sends 40 %, closes
        self._head(len(body))
        self.wfile.write(body[: len(body) * 4 // 10])

    def _nolength_cut(self, body):
        self._head(None)
        self.wfile.write(body[: len(body) * 4 // 10])

    def _nolength_full(self, body):
        self._head(None)
        self.wfile.write(body)

    def _html(self, body):
        page = b"<!DOCTYPE html><html><body><form>Please log in to continue</form></body></html>"
        self._head(len(page), "text/html")
        self.wfile.write(page)

    def _corrupt(self, body):
        self._full(_corrupt(body))

    def _chunked_cut(self, body):  # two chunks, then the connection closes without the final 0-chunk
        self._head(None, chunked=True)
        for piece in (body[:1000], body[1000:2000]):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))

    def _missing(self, body):
        self.send_error(404)

    def _reset(self, body):  # a TCP reset instead of an answer
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def _drip(self, body):  # one byte every 0.2 s: no single read ever times out (8 s at most, then it is cut)
        self._head(len(body))
        for i in range(40):
            try:
                self.wfile.write(body[i : i + 1])
            except OSError:
                return
            time.sleep(0.2)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address) -> None:  # a client that gives up is part of the test
        pass


@pytest.fixture
def server():
    """A local HTTP server on 127.0.0.1 (port 0): ``server.url(path, kind, body)`` sets a route, returns its URL."""
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.routes, srv.hits = {}, []

    def url(path: str, kind: str = "full", body: bytes = GOOD) -> str:
        srv.routes[path] = (kind, body)
        return f"http://127.0.0.1:{srv.server_address[1]}{path}"

    srv.url = url
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _fetch(url, dest, **kw):
    kw.setdefault("timeout", 5)
    kw.setdefault("validate", zip_with_member(MEMBER))
    return fetch(url, dest, **kw)


def test_a_good_download_is_verified_recorded_and_then_used_offline(server, tmp_path):
    url = server.url("/j.zip")
    dest = _fetch(url, tmp_path / "j.zip")
    assert dest.read_bytes() == GOOD
    record = (tmp_path / "j.zip.sha256").read_text().splitlines()
    assert record[0].startswith("# ") and record[1] == f"{hashlib.sha256(GOOD).hexdigest()}  j.zip"
    server.url("/j.zip", "missing")  # the server is gone: the verified copy is used without asking it
    assert _fetch(url, tmp_path / "j.zip") == dest and server.hits == ["/j.zip"]
    assert sorted(os.listdir(tmp_path)) == ["j.zip", "j.zip.sha256"]


def test_a_complete_body_without_content_length_is_accepted(server, tmp_path):
    assert _fetch(server.url("/j.zip", "nolength_full"), tmp_path / "j.zip").read_bytes() == GOOD


@pytest.mark.parametrize(
    "kind, message",
    [
        ("cut", rf"received {len(GOOD) * 4 // 10} of {len(GOOD)} bytes \(the connection was cut\)"),
        ("nolength_cut", r"is not a complete zip archive"),
        ("html", r"is not a complete zip archive .*\(it is an HTML page\)"),
        ("corrupt", r"is not a complete zip archive"),
        ("chunked_cut", r"IncompleteRead"),
        ("missing", r"j\.zip: HTTP error 404 \(Not Found\)"),
        ("reset", r"could not download http://127\.0\.0\.1:\d+/j\.zip"),
    ],
)
def test_a_bad_download_leaves_nothing_behind(server, tmp_path, kind, message):
    """Before: a cut, HTML or corrupt body was renamed to j.zip and its digest recorded as the trusted one."""
    with pytest.raises(DownloadError, match=message):
        _fetch(server.url("/j.zip", kind), tmp_path / "j.zip")
    assert os.listdir(tmp_path) == []  # no j.zip, no j.zip.sha256, no temporary, no lock


def test_a_slow_drip_stops_at_the_deadline(server, tmp_path):
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"not complete after the 1 s deadline"):
        _fetch(server.url("/j.zip", "drip"), tmp_path / "j.zip", timeout=5, deadline=1)
    assert time.monotonic() - started < 4 and os.listdir(tmp_path) == []


def test_the_pinned_digest_is_checked(server, tmp_path):
    with pytest.raises(DownloadError, match=r"sha256 is [0-9a-f]{64}, not 00ff, that of the official file"):
        _fetch(server.url("/j.zip"), tmp_path / "j.zip", checksum="sha256:00ff")
    assert os.listdir(tmp_path) == []
    md5 = hashlib.md5(GOOD).hexdigest()
    assert _fetch(server.url("/j.zip"), tmp_path / "j.zip", checksum=f"md5:{md5}").read_bytes() == GOOD
    assert os.listdir(tmp_path) == ["j.zip"]  # a pinned digest needs no record


def test_a_corrupt_cached_file_is_downloaded_again(server, tmp_path):
    """Before: 'delete it and run again' -- now the next run replaces it, with a warning."""
    dest = tmp_path / "j.zip"
    url = server.url("/j.zip")
    dest.write_bytes(GOOD[: len(GOOD) // 2])  # e.g. copied by hand, cut short
    with pytest.warns(UserWarning, match=r"j\.zip is not the expected file: it is not a complete zip archive"):
        _fetch(url, dest)
    assert dest.read_bytes() == GOOD
    dest.write_bytes(_corrupt(GOOD))  # damaged after a verified download: its recorded digest tells
    with pytest.warns(UserWarning, match=r"j\.zip has sha256 [0-9a-f]{64}, expected"):
        _fetch(url, dest)
    assert dest.read_bytes() == GOOD and server.hits == ["/j.zip", "/j.zip"]


def test_a_record_of_an_unverified_download_is_replaced(server, tmp_path):
    """Older versions recorded the digest of whatever arrived; such a record must not refuse the good file."""
    (tmp_path / "j.zip.sha256").write_text(f"{hashlib.sha256(GOOD[:100]).hexdigest()}  j.zip\n")  # poisoned
    assert _fetch(server.url("/j.zip"), tmp_path / "j.zip").read_bytes() == GOOD
    assert (tmp_path / "j.zip.sha256").read_text().split()[-2] == hashlib.sha256(GOOD).hexdigest()


def test_a_changed_file_upstream_is_refused_against_a_verified_record(server, tmp_path):
    dest = _fetch(server.url("/j.zip"), tmp_path / "j.zip")
    dest.unlink()
    other = _zip(_csv_text(300))
    with pytest.raises(DownloadError, match=r"first downloaded here .*j\.zip\.sha256; delete it if"):
        _fetch(server.url("/j.zip", "full", other), dest)
    assert sorted(os.listdir(tmp_path)) == ["j.zip.sha256"]


def _disk_full(monkeypatch):
    """Make writing the download fail as a full disk does (the folder itself stays writable)."""
    real_open = open

    class Full(io.RawIOBase):
        def writable(self):
            return True

        def write(self, b):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def fake_open(path, mode="r", *a, **k):
        return Full() if "w" in mode and str(path).endswith(".part") else real_open(path, mode, *a, **k)

    monkeypatch.setattr(download, "open", fake_open, raising=False)


def test_a_local_disk_error_is_not_a_download_error(server, tmp_path, monkeypatch):
    """Before: disk full became a DownloadError, and source='auto' quietly switched to synthetic data."""
    _disk_full(monkeypatch)
    with pytest.raises(LocalFileError, match=r"could not write .*j\.zip: .*No space left on device") as e:
        _fetch(server.url("/j.zip"), tmp_path / "j.zip")
    assert not isinstance(e.value, DownloadError) and os.listdir(tmp_path) == []

    import seqlight.data.jena as jena

    monkeypatch.setattr(jena, "JENA_URL", server.url("/jena.zip"))
    dm = jena.JenaDataModule(data_dir=str(tmp_path), source="auto", synthetic_rows=300, download_timeout=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "using the synthetic stand-in" warning: an error instead
        with pytest.raises(LocalFileError, match=r"jena_climate_2009_2016\.csv\.zip"):
            dm.prepare_data()


def test_jena_auto_recovers_from_a_cut_download(server, tmp_path, monkeypatch):
    """Before: run 1 crashed with BadZipFile, run 2 too, run 3 refused the good file against the cut file's digest."""
    import seqlight.data.jena as jena

    url = server.url("/jena.zip", "cut")
    monkeypatch.setattr(jena, "JENA_URL", url)

    def run():
        dm = jena.JenaDataModule(data_dir=str(tmp_path), source="auto", synthetic_rows=300, download_timeout=5)
        dm.prepare_data()
        return dm

    with pytest.warns(UserWarning, match=r"(?s)received \d+ of \d+ bytes.*source='auto': using the synthetic"):
        first = run()
    assert "SYNTHETIC" in first.source_description
    assert sorted(os.listdir(tmp_path)) == ["jena_climate_synthetic_300.csv"]  # nothing of the cut download
    server.url("/jena.zip", "full")  # the server is healthy again
    second = run()
    assert second.source_description.endswith("(downloaded)")
    assert (tmp_path / MEMBER).read_text() == CSV and len(jena.read_jena_csv(second._csv).values) == 400
    # the zip gets damaged and the CSV deleted: the next run notices, downloads again and carries on
    (tmp_path / MEMBER).unlink()
    (tmp_path / (MEMBER + ".zip")).write_bytes(_corrupt(GOOD))
    with pytest.warns(UserWarning, match="corrupt or not the official file; downloading it again"):
        third = run()
    assert third.source_description.endswith("(downloaded)") and (tmp_path / MEMBER).read_text() == CSV


def _tarball(tmp_path: Path) -> bytes:
    from seqlight.data.imdb_synthetic import make_synthetic_acl_imdb

    src = make_synthetic_acl_imdb(tmp_path / "src", n_per_class=3)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(src, arcname="aclImdb")
    shutil.rmtree(tmp_path / "src")
    return buf.getvalue()


def test_imdb_download_is_checked_and_unpacked(server, tmp_path, monkeypatch):
    import seqlight.data.imdb as imdb
    import seqlight.data.imdb_download as imdb_download

    body = _tarball(tmp_path)
    monkeypatch.setattr(imdb_download, "ACL_IMDB_URL", server.url("/acl.tar.gz", "cut", body))
    monkeypatch.setattr(imdb_download, "ACL_IMDB_SHA256", hashlib.sha256(body).hexdigest())
    data = tmp_path / "data"
    with pytest.raises(imdb.ImdbDataError, match=r"received \d+ of \d+ bytes"):
        imdb.ImdbDataModule(data_dir=str(data), source="real", training_samples=2, validation_samples=2).prepare_data()
    assert not data.exists() or os.listdir(data) == []
    server.url("/acl.tar.gz", "full", body)
    dm = imdb.ImdbDataModule(data_dir=str(data), source="real", training_samples=2, validation_samples=2)
    dm.prepare_data()
    assert dm.source_description.endswith("(downloaded)")
    assert sorted(os.listdir(data)) == ["aclImdb", "aclImdb_v1.tar.gz"]
    assert len(list((data / "aclImdb" / "test" / "neg").iterdir())) == 3


def test_archive_checks_and_safe_extraction(tmp_path):
    good = tmp_path / "a.tar.gz"
    good.write_bytes(_tarball(tmp_path))
    tar_with_top("aclImdb")(good)
    with pytest.raises(ValueError, match="without a top-level folder 'other'"):
        tar_with_top("other")(good)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="not a complete tar archive"):
        tar_with_top("aclImdb")(cut)
    with pytest.raises(DownloadError, match="cut.tar.gz is not a complete tar archive"):
        extract_tar(cut, "aclImdb", tmp_path / "out")
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tf:
        info = tarfile.TarInfo("aclImdb/../../escape.txt")
        tf.addfile(info, io.BytesIO(b""))
    with pytest.raises(DownloadError, match="refusing unsafe member"):
        extract_tar(evil, "aclImdb", tmp_path / "out")
    root = extract_tar(good, "aclImdb", tmp_path / "out")
    assert (root / "train" / "pos").is_dir() and sorted(os.listdir(tmp_path / "out")) == ["aclImdb"]


def _as_other_user(code: str, env: dict) -> subprocess.CompletedProcess:
    """Run ``code`` as a user that cannot write the data folder: 'nobody' when we are root (root writes anywhere)."""
    cmd = [sys.executable, "-c", textwrap.dedent(code)]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot make a folder read-only for the test")
        # 'nobody' keeps CAP_DAC_READ_SEARCH: it reads the checkout and its venv wherever they are (a clone in a
        # private 0700 folder included) but, without CAP_DAC_OVERRIDE, still cannot write a 0555 folder.
        caps = ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *caps, *cmd]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def test_a_read_only_data_folder_with_the_files_in_it_works(tmp_path):
    """Before: both DataModules failed in mkstemp before reading, IMDB even though its tarball was there."""
    base = Path(tempfile.mkdtemp(prefix="seqlight-ro-", dir="/tmp"))  # reachable by 'nobody', unlike tmp_path
    try:
        data, cache = base / "data", base / "cache"
        data.mkdir()
        cache.mkdir()
        (data / MEMBER).write_text(CSV)
        (data / "aclImdb_v1.tar.gz").write_bytes(_tarball(tmp_path))
        for p, mode in ((base, 0o755), (data, 0o555), (cache, 0o777)):
            p.chmod(mode)
        before = sorted(os.listdir(data))
        with socket.socket() as s:  # a port where nothing listens: "offline" at once
            s.bind(("127.0.0.1", 0))
            closed = s.getsockname()[1]
        src = str(Path(__file__).resolve().parents[2] / "src")
        env = dict(os.environ, PYTHONPATH=src, SEQLIGHT_CACHE=str(cache), HOME=str(cache))
        out = _as_other_user(
            f"""
            import os, warnings
            import seqlight.data.imdb as imdb
            import seqlight.data.imdb_download as imdb_download
            from seqlight.data import JenaDataModule
            assert not os.access({str(data)!r}, os.W_OK)
            imdb_download.KERAS_IMDB_URL = "http://127.0.0.1:{closed}/imdb.npz"
            dm = JenaDataModule(data_dir={str(data)!r}, source="real")
            dm.prepare_data()
            print(dm.source_description)
            k = imdb.KerasImdbDataModule(data_dir={str(data)!r}, source="real", maxlen=10, download_timeout=2)
            k.prepare_data()
            print(k.source_description)
            """,
            env,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        jena_line, imdb_line = out.stdout.strip().splitlines()
        assert jena_line == f"real Jena climate file {data / MEMBER}"
        assert imdb_line.startswith(f"real aclImdb {cache / 'datasets' / 'aclImdb'}")  # unpacked into the cache
        assert sorted(os.listdir(data)) == before
    finally:
        for p in (base, base / "data"):
            p.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)
