"""Resumable download and MSR-VTT archive handling against a real HTTP server on 127.0.0.1."""
from __future__ import annotations

import hashlib
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from glscl_lite.cli import main as cli_main
from glscl_lite.data.download import check_zip, download_file, download_msrvtt
from glscl_lite.errors import DataError, OfflineError

try:
    from data_fixtures import make_corpus, zip_dir
except ImportError:  # tests/ imported as a package
    from tests.data_fixtures import make_corpus, zip_dir


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        srv = self.server
        rng = self.headers.get("Range")
        srv.requests.append((self.path, rng))
        data = srv.files.get(self.path)
        if data is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start, status = 0, 200
        if rng and srv.ranges:
            m = re.fullmatch(r"bytes=(\d+)-", rng)
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if self.path in srv.drop_once:  # send half of the body, then hang up
            srv.drop_once.discard(self.path)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.files, srv.requests, srv.drop_once, srv.ranges = {}, [], set(), True
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()


def _blob(n=300_000, seed=0):
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


# ------------------------------------------------------------------------------------ download
def test_download_complete(server, tmp_path):
    data = _blob()
    server.files["/a.bin"] = data
    out = download_file(server.url + "/a.bin", tmp_path / "a.bin", expected_size=len(data),
                        sha256=hashlib.sha256(data).hexdigest(), progress=False, chunk=1 << 14)
    assert out == tmp_path / "a.bin" and out.read_bytes() == data
    assert not (tmp_path / "a.bin.part").exists()
    assert server.requests == [("/a.bin", None)]
    # an existing complete file is not fetched again
    download_file(server.url + "/a.bin", out, expected_size=len(data), progress=False)
    assert len(server.requests) == 1


def test_interrupted_download_resumes_with_range(server, tmp_path):
    data = _blob()
    server.files["/big.zip"] = data
    server.drop_once.add("/big.zip")
    dest = tmp_path / "big.zip"
    with pytest.raises(OfflineError) as e:
        download_file(server.url + "/big.zip", dest, progress=False, chunk=1 << 14)
    msg = str(e.value)
    assert f"could not download {server.url}/big.zip: connection closed after {len(data) // 2} of {len(data)} bytes" in msg
    assert f"kept in {dest}.part" in msg and f"put it at {dest}" in msg
    part = tmp_path / "big.zip.part"
    assert part.stat().st_size == len(data) // 2 and not dest.exists()
    download_file(server.url + "/big.zip", dest, progress=False, chunk=1 << 14)
    assert server.requests[-1] == ("/big.zip", f"bytes={len(data) // 2}-")
    assert dest.read_bytes() == data and not part.exists()


def test_resume_against_server_without_range_support(server, tmp_path):
    data = _blob(seed=1)
    server.files["/f"] = data
    server.ranges = False
    (tmp_path / "f.part").write_bytes(b"stale bytes that must be discarded")
    download_file(server.url + "/f", tmp_path / "f", progress=False)
    assert server.requests == [("/f", "bytes=34-")]  # asked for a range, got a 200: restarted
    assert (tmp_path / "f").read_bytes() == data


def test_part_already_complete_gets_416(server, tmp_path):
    data = _blob(1000)
    server.files["/f"] = data
    (tmp_path / "f.part").write_bytes(data)
    download_file(server.url + "/f", tmp_path / "f", progress=False)
    assert (tmp_path / "f").read_bytes() == data and server.requests == [("/f", "bytes=1000-")]


def test_checksum_and_size_mismatch(server, tmp_path):
    server.files["/f"] = b"x" * 100
    with pytest.raises(DataError, match=r"f.part: sha256 [0-9a-f]{64} does not match the expected 00"):
        download_file(server.url + "/f", tmp_path / "f", sha256="00" * 32, progress=False)
    assert not (tmp_path / "f.part").exists() and not (tmp_path / "f").exists()
    with pytest.raises(DataError, match="has 100 bytes, expected 99"):
        download_file(server.url + "/f", tmp_path / "f", expected_size=99, progress=False)


def test_offline_and_http_errors(server, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/msrvtt_data.zip"
    with pytest.raises(OfflineError) as e:
        download_file(url, tmp_path / "x.zip", progress=False, timeout=5)
    assert str(e.value).startswith(f"could not download {url}: ")
    assert f"put it at {tmp_path / 'x.zip'}" in str(e.value)
    with pytest.raises(OfflineError, match="HTTP 404"):
        download_file(server.url + "/missing.zip", tmp_path / "y.zip", progress=False)


# -------------------------------------------------------------------------------------- archives
@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    """Zips laid out like the real ones: msrvtt_data/… and MSRVTT/videos/all/…"""
    root = tmp_path_factory.mktemp("archives")
    c = make_corpus(root / "src", n_train=4, n_test=2, frames={"video2": 3})
    anno_zip = zip_dir(c.anno_dir, root / "msrvtt_data.zip", arc_prefix="msrvtt_data/")
    video_zip = zip_dir(c.video_dir, root / "MSRVTT.zip", arc_prefix="MSRVTT/videos/all/")
    # the real video archive also holds annotation folders next to the videos
    import zipfile

    with zipfile.ZipFile(video_zip, "a") as z:
        z.writestr("MSRVTT/annotation/MSR_VTT.json", "{}")
    partial_zip = root / "partial.zip"
    with zipfile.ZipFile(partial_zip, "w") as z:
        for vid in c.all_ids[1:]:  # video0 is missing
            z.write(c.video_dir / f"{vid}.mp4", f"MSRVTT/videos/all/{vid}.mp4")
    return {"anno": anno_zip.read_bytes(), "videos": video_zip.read_bytes(),
            "partial": partial_zip.read_bytes(), "corpus": c}


def test_check_zip(tmp_path, archives):
    good = tmp_path / "good.zip"
    good.write_bytes(archives["anno"])
    check_zip(good)
    bad = tmp_path / "bad.zip"
    data = bytearray(archives["anno"])
    data[200:260] = b"\0" * 60  # inside the first member's compressed data
    bad.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"bad\.zip: (corrupt zip archive|not a valid zip archive)"):
        check_zip(bad)
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"junk\.zip: not a valid zip archive"):
        check_zip(junk)


def test_download_msrvtt_end_to_end_and_idempotent(server, tmp_path, archives):
    server.files["/anno.zip"] = archives["anno"]
    server.files["/videos.zip"] = archives["videos"]
    out = download_msrvtt(tmp_path / "msrvtt", anno_url=server.url + "/anno.zip",
                          video_url=server.url + "/videos.zip", progress=False)
    dest = tmp_path / "msrvtt"
    assert out == {"anno_dir": dest / "msrvtt_data", "video_dir": dest / "MSRVTT/videos/all"}
    assert sorted(p.name for p in out["anno_dir"].iterdir()) == [
        "MSRVTT_JSFUSION_test.csv", "MSRVTT_data.json", "MSRVTT_train.7k.csv", "MSRVTT_train.9k.csv"]
    assert sorted(p.name for p in out["video_dir"].iterdir()) == sorted(
        f"{v}.mp4" for v in archives["corpus"].all_ids)
    assert sorted(p.name for p in dest.iterdir()) == ["MSRVTT", "msrvtt_data"]  # archives removed
    n = len(server.requests)
    download_msrvtt(dest, anno_url=server.url + "/anno.zip", video_url=server.url + "/videos.zip",
                    progress=False)
    assert len(server.requests) == n  # everything already there: nothing fetched


def test_corrupt_archive_is_set_aside_and_fetched_again(server, tmp_path, archives):
    data = bytearray(archives["anno"])
    data[200:260] = b"\0" * 60
    server.files["/anno.zip"] = bytes(data)
    dest = tmp_path / "d"
    with pytest.raises(DataError) as e:
        download_msrvtt(dest, anno_url=server.url + "/anno.zip", videos=False, progress=False)
    assert f"moved to {dest / 'msrvtt_data.zip.corrupt'}" in str(e.value)
    assert not (dest / "msrvtt_data.zip").exists() and not (dest / "msrvtt_data").exists()
    server.files["/anno.zip"] = archives["anno"]
    out = download_msrvtt(dest, anno_url=server.url + "/anno.zip", videos=False, progress=False)
    assert (out["anno_dir"] / "MSRVTT_data.json").is_file()


def test_failed_check_lists_problems(server, tmp_path, archives):
    server.files["/anno.zip"] = archives["anno"]
    server.files["/partial.zip"] = archives["partial"]
    dest = tmp_path / "d"
    with pytest.raises(DataError) as e:
        download_msrvtt(dest, anno_url=server.url + "/anno.zip", video_url=server.url + "/partial.zip",
                        progress=False)
    assert "downloaded data failed the check (1 problem(s))" in str(e.value)
    assert f"video0: video file not found ({dest / 'MSRVTT/videos/all/video0.mp4'})" in str(e.value)


def test_archive_without_expected_layout(server, tmp_path, archives):
    server.files["/videos.zip"] = archives["anno"]  # wrong archive for the videos
    server.files["/anno.zip"] = archives["anno"]
    with pytest.raises(DataError, match=r"MSRVTT\.zip: archive does not contain a videos/all/ folder"):
        download_msrvtt(tmp_path / "d", anno_url=server.url + "/anno.zip",
                        video_url=server.url + "/videos.zip", progress=False)
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["MSRVTT.zip", "msrvtt_data"]


def test_cli_download(server, tmp_path, archives, capsys):
    server.files["/a/msrvtt_data.zip"] = archives["anno"]
    server.files["/v/MSRVTT.zip"] = archives["videos"]
    rc = cli_main(["data", "download", "--dest", str(tmp_path / "m"),
                   "--anno-url", server.url + "/a/msrvtt_data.zip",
                   "--video-url", server.url + "/v/MSRVTT.zip", "--quiet"])
    assert rc == 0
    assert (tmp_path / "m/MSRVTT/videos/all/video5.mp4").is_file()
    # unreachable server: a one-line error, exit code 2
    rc = cli_main(["data", "download", "--dest", str(tmp_path / "n"), "--no-videos", "--quiet",
                   "--anno-url", server.url + "/nothing.zip"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith(f"glscl-lite: error: could not download {server.url}/nothing.zip: HTTP 404")


def test_unwritable_destination(server, tmp_path):
    from glscl_lite.utils import OutputError

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match=r"file/m: output directory is not writable"):
        download_msrvtt(blocker / "m", anno_url=server.url + "/a.zip", progress=False)
    with pytest.raises(OutputError, match="not writable"):
        download_file(server.url + "/a.zip", blocker / "x" / "a.zip", progress=False)
    assert server.requests == []  # refused before any network traffic
