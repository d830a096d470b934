"""A local fake of the Hugging Face Hub's ``resolve`` endpoint, so downloads can be tested offline.

`FakeHub` is a real HTTP server on 127.0.0.1 that answers ``HEAD`` and ``GET`` on
``/{repo_id}/resolve/{revision}/{filename}`` the way huggingface.co does for a plain (non-Xet, non-redirected)
file, so the real `huggingface_hub.hf_hub_download` runs unchanged against it. `hub_environment` points an
already-imported ``huggingface_hub`` at it, and the `fake_hub` fixture does both for one test.

What huggingface_hub 2.4.0 does, read from its source and checked by ``tests/test_fakehub.py``:

- Requests. ``hf_hub_download`` sends ``HEAD .../resolve/{revision}/{filename}`` (without following redirects to
  other hosts) and reads ``X-Repo-Commit`` (required), ``X-Linked-Etag`` or else ``ETag`` (required, quotes
  stripped; names the blob in the cache), ``X-Linked-Size`` or else ``Content-Length``, and the Xet headers
  ``X-Xet-Hash``/``X-Xet-Refresh-Route`` (absent here, so it takes the plain HTTP path even with ``hf_xet``
  installed). It then sends ``GET`` to the same URL unless the blob is already cached. Once a file is cached a
  later call costs one ``HEAD`` and no ``GET``; with ``revision=<40-hex sha>`` of a cached snapshot it sends
  nothing at all.
- Errors. A 404 is mapped through ``X-Error-Code``: ``RepoNotFound`` -> ``RepositoryNotFoundError``,
  ``RevisionNotFound`` -> ``RevisionNotFoundError``, ``EntryNotFound`` -> ``RemoteEntryNotFoundError`` (a subclass of
  both ``HfHubHTTPError`` and ``EntryNotFoundError``). With ``X-Repo-Commit`` on the ``EntryNotFound`` reply the
  client also records the miss under ``.no_exist/{commit}/``.
- Hub unreachable, file cached: when the ``HEAD`` fails with a connection error, a timeout or an HTTP error other
  than ``RevisionNotFound``/``EntryNotFound`` (a 500, a 403, even ``RepoNotFound``), nothing is retried and the
  file cached for that revision (``refs/{revision}`` -> ``snapshots/{commit}/``) is returned at once, in a few ms.
  ``HF_HUB_OFFLINE`` is not needed.
- Hub unreachable, nothing cached: ``LocalEntryNotFoundError`` (a ``FileNotFoundError``), whose ``__cause__`` is the
  ``httpx2.ConnectError`` (or the ``HfHubHTTPError`` of the reply). Connection errors, timeouts and
  408/429/500/502/503/504 replies are first retried with ``HEAD`` after sleeps of 1, 2, 4, 8 and 8 s, so the call
  takes about 23 s (measured: 23.2 s with the server stopped, 23.0 s with 500 replies); a 403 fails at once. No
  environment variable shortens that backoff: ``HF_HUB_ETAG_TIMEOUT`` (default 10 s) and ``HF_HUB_DOWNLOAD_TIMEOUT``
  (default 10 s) only bound a single request. Only offline mode (``HF_HUB_OFFLINE=1`` before import, or patching
  ``constants.HF_HUB_OFFLINE``) or ``local_files_only=True`` fails at once, with ``LocalEntryNotFoundError`` and no
  request sent. Tests skip the sleeps with `skip_backoff_sleeps`.
- Interrupted body: a ``GET`` that ends before ``Content-Length`` is retried after a 1 s sleep, up to 5 times in a
  row without progress, and then ``httpx2.RemoteProtocolError`` escapes ``hf_hub_download`` and nothing is cached.
  Retries ask for ``Range: bytes={written}-``, where only whole chunks of ``constants.DOWNLOAD_CHUNK_SIZE`` (10 MiB)
  count as written, so a smaller file is fetched again from the start.
- Integrity: downloaded bytes are never checked against the ``ETag``; a body of the right length but wrong content
  is cached as is, under the blob name the ``ETag`` gave.
- Environment. ``constants`` reads ``HF_ENDPOINT``, ``HF_HOME``, ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE`` and the other
  variables once, at import, and ``HUGGINGFACE_CO_URL_TEMPLATE`` is built from ``ENDPOINT`` then; setting the
  environment later changes nothing. ``hf_hub_download(endpoint=...)`` works by rewriting a URL that starts with
  ``constants.ENDPOINT``, so it needs no patching. `hub_environment` sets the variables and patches the constants.
"""

from __future__ import annotations

import hashlib
import http.server
import importlib
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

__all__ = ["FakeHub", "fake_hub", "hub_environment", "skip_backoff_sleeps"]

_RESOLVE_PATH = re.compile(r"/(?P<repo_id>.+?)/resolve/(?P<revision>[^/]+)/(?P<filename>.+)")
_COMMIT_SHA = re.compile(r"[0-9a-f]{40}")
_BYTE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class FakeHub:
    """A Hub serving files from memory over HTTP on 127.0.0.1, in a background thread.

    Use it as a context manager or call `start`/`stop`. After the first start the port stays fixed, so a stopped
    hub can be started again at the same `endpoint`. The failure switches may be changed while it runs.
    """

    def __init__(self) -> None:
        self.fail_with: int | None = None  # status code answered to every request (e.g. 500); None serves normally
        self.truncate = False  # GET bodies stop at the middle of the file, short of the Content-Length announced
        self.corrupt = False  # GET bodies keep their length but the file's first byte is inverted (ETag unchanged)
        self.requests: list[tuple[str, str]] = []  # (method, raw URL path) of every request received, in order
        self.request_headers: list[dict[str, str]] = []  # headers of every request, parallel to `requests`
        self.cache_dir: Path | None = None  # hub cache directory; set by the `fake_hub` fixture
        self._refs: dict[str, dict[str, str]] = {}  # repo_id -> branch or tag -> commit sha
        self._commits: dict[str, dict[str, dict[str, bytes]]] = {}  # repo_id -> commit sha -> filename -> content
        self._lock = threading.Lock()
        self._port = 0
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Repository contents

    def add_file(self, repo_id: str, filename: str, data: bytes, *, revision: str = "main") -> str:
        """Put `data` at `filename` on branch `revision` of `repo_id` and return the branch's new commit sha.

        The sha is the SHA-1 of the repo id, the revision and every (filename, SHA-256) pair on it, so equal
        contents give equal shas. Earlier commits stay reachable by their sha, like pinned revisions on the Hub.
        """
        if _COMMIT_SHA.fullmatch(revision):
            raise ValueError(f"commits are immutable; add files to a branch, not to commit {revision}")
        if not filename or filename.startswith("/") or filename.endswith("/") or ".." in filename.split("/"):
            raise ValueError(f"invalid filename {filename!r}")
        with self._lock:
            refs = self._refs.setdefault(repo_id, {})
            commits = self._commits.setdefault(repo_id, {})
            files = dict(commits[refs[revision]]) if revision in refs else {}
            files[filename] = bytes(data)
            digest = hashlib.sha1(f"{repo_id}\0{revision}\0".encode())
            for name in sorted(files):
                digest.update(f"{name}\0{hashlib.sha256(files[name]).hexdigest()}\0".encode())
            commit = digest.hexdigest()
            commits[commit] = files
            refs[revision] = commit
        return commit

    def count(self, method: str, filename: str | None = None) -> int:
        """Number of requests received with `method`, only those for `filename` if given."""
        with self._lock:
            return sum(
                1
                for request_method, path in self.requests
                if request_method == method and (filename is None or unquote(path).endswith(f"/{filename}"))
            )

    # Server lifecycle

    @property
    def endpoint(self) -> str:
        """Base URL to use as ``HF_ENDPOINT``, e.g. ``"http://127.0.0.1:54321"``."""
        if self._port == 0:
            raise RuntimeError("FakeHub has not been started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> FakeHub:
        if self._server is not None:
            raise RuntimeError("FakeHub is already running")
        handler = type("_BoundResolveHandler", (_ResolveHandler,), {"hub": self})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="FakeHub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; the port is refused afterwards. Does nothing if not running."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Request handling, called from the server's threads

    def _handle(self, handler: _ResolveHandler, send_body: bool) -> None:
        path = urlsplit(handler.path).path
        with self._lock:
            self.requests.append((handler.command, path))
            self.request_headers.append(dict(handler.headers.items()))
            fail_with, truncate, corrupt = self.fail_with, self.truncate, self.corrupt
        if fail_with is not None:
            return _send_error(handler, fail_with, None, "Injected failure", send_body)
        match = _RESOLVE_PATH.fullmatch(path)
        if match is None:
            return _send_error(handler, 404, None, "Not Found", send_body)
        repo_id, revision, filename = (unquote(match[key]) for key in ("repo_id", "revision", "filename"))
        with self._lock:
            commits = self._commits.get(repo_id)
            if commits is None:
                return _send_error(handler, 404, "RepoNotFound", "Repository not found", send_body)
            commit = self._refs[repo_id].get(revision) or (revision if revision in commits else None)
            if commit is None:
                return _send_error(handler, 404, "RevisionNotFound", f"Invalid rev id: {revision}", send_body)
            data = commits[commit].get(filename)
        if data is None:
            extra = {"X-Repo-Commit": commit}
            return _send_error(handler, 404, "EntryNotFound", "Entry not found", send_body, extra)

        headers = {
            "X-Repo-Commit": commit,
            "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        span = _byte_span(handler.headers.get("Range"), len(data))
        if span is None:
            status, start, end = 200, 0, len(data)
        elif span == (-1, -1):
            extra = {"Content-Range": f"bytes */{len(data)}"}
            return _send_error(handler, 416, None, "Requested range not satisfiable", send_body, extra)
        else:
            status, (start, end) = 206, span
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(data)}"
        headers["Content-Length"] = str(end - start)

        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        if not send_body:
            return
        if corrupt and data:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        if truncate:
            end = min(end, max(start, len(data) // 2))
        handler.wfile.write(data[start:end])
        handler.close_connection = True  # the client sees EOF early when the body was cut short


class _ResolveHandler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.0 closes every connection after its response, so no pooled keep-alive connection outlives `stop()`.
    protocol_version = "HTTP/1.0"
    hub: FakeHub

    def do_HEAD(self) -> None:
        self.hub._handle(self, send_body=False)

    def do_GET(self) -> None:
        self.hub._handle(self, send_body=True)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the hub records requests itself; stderr stays quiet


def _send_error(
    handler: http.server.BaseHTTPRequestHandler,
    status: int,
    error_code: str | None,
    message: str,
    send_body: bool,
    extra_headers: dict[str, str] | None = None,
) -> None:
    """Reply like the Hub does on errors: ``X-Error-Code`` selects the huggingface_hub exception class."""
    body = message.encode()
    handler.send_response(status)
    if error_code is not None:
        handler.send_header("X-Error-Code", error_code)
    handler.send_header("X-Error-Message", message)
    for name, value in (extra_headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Type", "text/plain; charset=utf-8")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if send_body:
        handler.wfile.write(body)


def _byte_span(range_header: str | None, size: int) -> tuple[int, int] | None:
    """Half-open byte span [start, end) selected by a single-range ``Range`` header.

    None means serve the whole file (no header, or one this server does not parse, which RFC 9110 lets it
    ignore); (-1, -1) means the range is unsatisfiable.
    """
    if range_header is None:
        return None
    match = _BYTE_RANGE.fullmatch(range_header.strip())
    if match is None or not (match[1] or match[2]):
        return None
    if match[1]:
        start = int(match[1])
        end = min(int(match[2]) + 1, size) if match[2] else size
    else:
        start, end = max(size - int(match[2]), 0), size
    return (start, end) if start < end else (-1, -1)


def hub_environment(monkeypatch: pytest.MonkeyPatch, endpoint: str, cache_dir: Path) -> Path:
    """Point huggingface_hub at `endpoint` with all its state under `cache_dir`; returns the hub cache directory.

    Sets the environment variables (for code that reads them, and for subprocesses) and patches the constants
    huggingface_hub already computed from them at import. ``HF_HOME`` is `cache_dir`, the hub cache (``HF_HUB_CACHE``)
    is ``cache_dir / "hub"``. Offline mode, telemetry, progress bars and implicit tokens are turned off and no token
    variable is left set. Everything is undone by `monkeypatch`.
    """
    from huggingface_hub import constants
    from huggingface_hub.utils import _cache_assets, _cache_manager

    # `huggingface_hub.utils.tqdm` is shadowed by the class of that name, hence the explicit module import.
    hf_tqdm = importlib.import_module("huggingface_hub.utils.tqdm")

    endpoint = endpoint.rstrip("/")
    home = Path(cache_dir)
    hub_cache = home / "hub"
    hub_cache.mkdir(parents=True, exist_ok=True)
    paths = {
        "HF_HOME": home,
        "HF_HUB_CACHE": hub_cache,
        "HF_ASSETS_CACHE": home / "assets",
        "HF_XET_CACHE": home / "xet",
        "HF_TOKEN_PATH": home / "token",
    }

    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                 "HUGGINGFACE_HUB_CACHE", "HUGGINGFACE_ASSETS_CACHE", "HF_OIDC_ID_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    for name, path in paths.items():
        monkeypatch.setenv(name, str(path))
    for name in ("HF_HUB_DISABLE_TELEMETRY", "HF_HUB_DISABLE_IMPLICIT_TOKEN", "HF_HUB_DISABLE_PROGRESS_BARS"):
        monkeypatch.setenv(name, "1")

    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    for name, path in paths.items():
        monkeypatch.setattr(constants, name, str(path))
    monkeypatch.setattr(constants, "HUGGINGFACE_HUB_CACHE", str(hub_cache))
    monkeypatch.setattr(constants, "HUGGINGFACE_ASSETS_CACHE", str(paths["HF_ASSETS_CACHE"]))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_IMPLICIT_TOKEN", True)
    # These modules copied the values with `from ..constants import ...` at import.
    monkeypatch.setattr(_cache_manager, "HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setattr(_cache_assets, "HF_ASSETS_CACHE", str(paths["HF_ASSETS_CACHE"]))
    monkeypatch.setattr(hf_tqdm, "HF_HUB_DISABLE_PROGRESS_BARS", True)
    return hub_cache


class _RecordingTime:
    """Stands in for the `time` module inside huggingface_hub: `sleep` only records, the rest is the real module."""

    def __init__(self, slept: list[float]) -> None:
        self._slept = slept

    def sleep(self, seconds: float) -> None:
        self._slept.append(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def skip_backoff_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Make huggingface_hub's retry sleeps return at once; returns the list the requested durations go into.

    Only the module references inside ``huggingface_hub.utils._http`` (request backoff) and
    ``huggingface_hub.file_download`` (download resume) are replaced; `time.sleep` elsewhere is untouched.
    """
    from huggingface_hub import file_download
    from huggingface_hub.utils import _http

    slept: list[float] = []
    recording_time = _RecordingTime(slept)
    monkeypatch.setattr(_http, "time", recording_time)
    monkeypatch.setattr(file_download, "time", recording_time)
    return slept


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    """A running `FakeHub` with huggingface_hub pointed at it and its cache in ``tmp_path / "hf" / "hub"``."""
    with FakeHub() as hub:
        hub.cache_dir = hub_environment(monkeypatch, hub.endpoint, tmp_path / "hf")
        yield hub
