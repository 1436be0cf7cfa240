"""The dSprites download (mmjsd.data.download): retries, resume, md5, one-line errors.

Served by a local HTTP server that honours Range and can break a transfer off mid-file; nothing
here touches the network.
"""

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from mmjsd.cli import main
from mmjsd.data import download, dsprites
from mmjsd.errors import DataError
from conftest import REPO

CONFIG = str(REPO / "config.yaml")


def one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message and " -- fix: " in message
    return message


class Server:
    """Serves `payload` at /dsprites.npz. `cuts[i]`: the i-th answer stops after that many bytes of
    its body (the connection closes); `ranges`: the Range header of every request; `status`: an
    error status to answer with instead."""

    def __init__(self, payload: bytes, cuts=(), honour_range=True, status=None):
        self.payload, self.cuts, self.honour_range, self.status = payload, list(cuts), honour_range, status
        self.ranges: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.ranges.append(self.headers.get("Range"))
                if server.status:
                    self.send_error(server.status)
                    return
                start = 0
                if server.honour_range and self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].rstrip("-"))
                    if start >= len(server.payload):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(server.payload) - 1}/{len(server.payload)}")
                else:
                    self.send_response(200)
                body = server.payload[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                cut = server.cuts.pop(0) if server.cuts else None
                self.wfile.write(body if cut is None else body[:cut])
                self.wfile.flush()
                if cut is not None:
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/dsprites.npz"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(payload, **kwargs):
        servers.append(Server(payload, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


PAYLOAD = bytes(range(256)) * 12_000           # 3 MB: several chunks
MD5 = hashlib.md5(PAYLOAD).hexdigest()


def test_download_verifies_and_writes(serve, tmp_path):
    server = serve(PAYLOAD)
    out = download.download_dsprites(tmp_path / "official.npz", url=server.url, md5=MD5, backoff=0)
    assert out.read_bytes() == PAYLOAD and server.ranges == [None]
    assert list(tmp_path.iterdir()) == [out]


def test_a_transfer_broken_off_is_resumed_with_range_requests(serve, tmp_path):
    server = serve(PAYLOAD, cuts=[1_000_000, 500_000])
    out = download.download_dsprites(tmp_path / "official.npz", url=server.url, md5=MD5, backoff=0)
    assert out.read_bytes() == PAYLOAD
    # each resume asks for the rest after what was written (whole chunks; the bytes in flight are fetched again)
    first, second = (int(r.split("=")[1].rstrip("-")) for r in server.ranges[1:])
    assert server.ranges[0] is None and len(server.ranges) == 3
    assert 1_000_000 - download.CHUNK < first <= 1_000_000 and first < second <= first + 500_000
    assert not download.partial_path(out).exists()


def test_what_an_earlier_run_received_is_resumed_by_the_next(serve, tmp_path):
    out = tmp_path / "official.npz"
    server = serve(PAYLOAD, cuts=[700_000] * 3)
    with pytest.raises(DataError) as exc:
        download.download_dsprites(out, url=server.url, md5=MD5, retries=2, backoff=0)
    message = one_line(exc)
    assert "broke off 3 times" in message and "run again to resume it" in message
    kept = download.partial_path(out).stat().st_size
    assert 3 * (700_000 - download.CHUNK) < kept <= 2_100_000 and not out.exists()
    assert f"{kept} bytes are kept in {download.partial_path(out)}" in message
    download.download_dsprites(out, url=server.url, md5=MD5, backoff=0)       # the next run
    assert out.read_bytes() == PAYLOAD and server.ranges[-1] == f"bytes={kept}-"


def test_a_server_that_ignores_range_starts_the_file_over(serve, tmp_path):
    out = tmp_path / "official.npz"
    download.partial_path(out).write_bytes(b"stale bytes")
    server = serve(PAYLOAD, honour_range=False)
    download.download_dsprites(out, url=server.url, md5=MD5, backoff=0)
    assert out.read_bytes() == PAYLOAD and server.ranges == ["bytes=11-"]


def test_md5_mismatch_leaves_nothing(serve, tmp_path):
    server = serve(b"pretend npz bytes")
    out = tmp_path / "out" / "official.npz"
    with pytest.raises(DataError) as exc:
        download.download_dsprites(out, url=server.url, backoff=0)
    assert "md5" in one_line(exc)
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_server_errors_are_retried_then_reported(serve, tmp_path):
    server = serve(PAYLOAD, status=503)
    with pytest.raises(DataError) as exc:
        download.download_dsprites(tmp_path / "official.npz", url=server.url, md5=MD5, retries=2, backoff=0)
    assert "HTTP 503" in one_line(exc)
    assert len(server.ranges) == 3                      # urllib3: the first request and 2 retries
    assert list(tmp_path.iterdir()) == []


def test_offline_fails_with_the_fixes_in_order(tmp_path):
    out = tmp_path / "official.npz"
    with pytest.raises(DataError) as exc:
        download.download_dsprites(out, url="http://127.0.0.1:9/dsprites.npz", timeout=5, retries=1, backoff=0)
    message = one_line(exc)
    assert "data.dsprites.source: render" in message and "mmjsd dsprites-render" in message
    # First where an npz downloaded elsewhere goes (the output path the pipeline expects), then the stand-in.
    fix = message.split(" -- fix: ")[1]
    assert fix.startswith(f"copy an official {dsprites.OFFICIAL_NAME} downloaded elsewhere to {out}")
    assert fix.index(str(out)) < fix.index("source: render")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_cli_download_offline_exits_nonzero(tmp_path, monkeypatch, capsys):
    def offline(self, url, **kwargs):
        raise requests.exceptions.ConnectionError("Failed to resolve 'dsprites.example' (Temporary failure in name resolution)")

    monkeypatch.setattr(requests.Session, "get", offline)
    out = tmp_path / "official.npz"
    assert main(["dsprites-download", "--config", CONFIG, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mmjsd: error: ") and "\n" not in err and "source: render" in err
    assert not out.exists() and list(tmp_path.iterdir()) == []
