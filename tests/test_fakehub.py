"""The fake Hub, exercised through the real `huggingface_hub.hf_hub_download`."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import constants, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.fakehub import FakeHub, fake_hub, hub_environment, skip_backoff_sleeps  # noqa: F401  (fixture)

REPO = "pulse-test/tiny-generator"
WEIGHTS = "weights/generator.safetensors"
DATA = bytes(range(256)) * 8  # 2 KiB, every byte value
BACKOFF = [1, 2, 4, 8, 8]  # huggingface_hub's HEAD retry sleeps before it gives up


def test_download_lands_in_tmp_cache_under_commit_snapshot(fake_hub: FakeHub) -> None:
    commit = fake_hub.add_file(REPO, WEIGHTS, DATA)

    path = Path(hf_hub_download(REPO, WEIGHTS))

    assert path.read_bytes() == DATA
    assert path.is_relative_to(fake_hub.cache_dir)
    assert path.parent.parent.name == commit and path.parent.parent.parent.name == "snapshots"
    assert path.resolve().name == hashlib.sha256(DATA).hexdigest()  # blob named after the ETag
    url_path = f"/{REPO}/resolve/main/{WEIGHTS}"
    assert fake_hub.requests == [("HEAD", url_path), ("GET", url_path)]
    assert "authorization" not in {name.lower() for name in fake_hub.request_headers[0]}


def test_second_download_is_served_from_cache(fake_hub: FakeHub) -> None:
    fake_hub.add_file(REPO, WEIGHTS, DATA)

    first = hf_hub_download(REPO, WEIGHTS)
    second = hf_hub_download(REPO, WEIGHTS)

    assert first == second
    assert (fake_hub.count("HEAD"), fake_hub.count("GET")) == (2, 1)


def test_endpoint_from_environment_variable_reaches_fake_hub(fake_hub: FakeHub) -> None:
    fake_hub.add_file(REPO, "config.json", b"{}")

    path = hf_hub_download(REPO, "config.json", endpoint=os.environ["HF_ENDPOINT"])

    assert Path(path).read_bytes() == b"{}"
    assert fake_hub.count("GET", "config.json") == 1


def test_hub_environment_sends_no_token_and_restores(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_must_not_be_sent")
    original_cache = constants.HF_HUB_CACHE
    with FakeHub() as hub, pytest.MonkeyPatch.context() as patch:
        hub_cache = hub_environment(patch, hub.endpoint, tmp_path / "hf")
        hub.add_file(REPO, "a.bin", b"a")
        path = hf_hub_download(REPO, "a.bin")
        assert "HF_TOKEN" not in os.environ
        assert (constants.ENDPOINT, constants.HF_HUB_CACHE) == (hub.endpoint, str(hub_cache))

    assert path.startswith(str(tmp_path))
    assert all("authorization" not in {name.lower() for name in headers} for headers in hub.request_headers)
    assert os.environ["HF_TOKEN"] == "hf_must_not_be_sent" and constants.HF_HUB_CACHE == original_cache


def test_each_commit_stays_downloadable_by_sha(fake_hub: FakeHub) -> None:
    old_commit = fake_hub.add_file(REPO, WEIGHTS, b"old weights")
    new_commit = fake_hub.add_file(REPO, WEIGHTS, b"new weights")

    old_path = hf_hub_download(REPO, WEIGHTS, revision=old_commit)
    new_path = hf_hub_download(REPO, WEIGHTS)
    requests_before = len(fake_hub.requests)
    again = hf_hub_download(REPO, WEIGHTS, revision=old_commit)

    assert old_commit != new_commit
    assert Path(old_path).read_bytes() == b"old weights"
    assert Path(new_path).read_bytes() == b"new weights"
    assert f"/{old_commit}/" in old_path and f"/{new_commit}/" in new_path
    assert again == old_path and len(fake_hub.requests) == requests_before  # a cached sha needs no request


def test_commit_sha_is_deterministic() -> None:
    first, second = FakeHub(), FakeHub()
    assert first.add_file(REPO, "a", b"1") == second.add_file(REPO, "a", b"1")
    assert first.add_file(REPO, "b", b"2") != first.add_file(REPO, "b", b"3")
    with pytest.raises(ValueError, match="immutable"):
        first.add_file(REPO, "c", b"4", revision="0" * 40)


@pytest.mark.parametrize(
    ("repo_id", "filename", "revision", "error"),
    [
        ("pulse-test/missing", WEIGHTS, None, RepositoryNotFoundError),
        (REPO, "missing.bin", None, RemoteEntryNotFoundError),
        (REPO, WEIGHTS, "no-such-branch", RevisionNotFoundError),
        (REPO, WEIGHTS, "f" * 40, RevisionNotFoundError),
    ],
)
def test_missing_things_raise_hub_errors(
    fake_hub: FakeHub,
    monkeypatch: pytest.MonkeyPatch,
    repo_id: str,
    filename: str,
    revision: str | None,
    error: type[HfHubHTTPError],
) -> None:
    fake_hub.add_file(REPO, WEIGHTS, DATA)
    slept = skip_backoff_sleeps(monkeypatch)

    with pytest.raises(error) as raised:
        hf_hub_download(repo_id, filename, revision=revision)

    assert raised.value.response.status_code == 404
    assert slept == [] and fake_hub.count("GET") == 0


def test_missing_file_is_an_entry_not_found_and_recorded_in_cache(fake_hub: FakeHub) -> None:
    commit = fake_hub.add_file(REPO, WEIGHTS, DATA)

    with pytest.raises(EntryNotFoundError):
        hf_hub_download(REPO, "missing.bin")

    assert (fake_hub.cache_dir / "models--pulse-test--tiny-generator" / ".no_exist" / commit / "missing.bin").is_file()


def test_stopped_hub_still_serves_cached_file(fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_hub.add_file(REPO, WEIGHTS, DATA)
    cached = hf_hub_download(REPO, WEIGHTS)
    slept = skip_backoff_sleeps(monkeypatch)
    fake_hub.stop()

    assert hf_hub_download(REPO, WEIGHTS) == cached
    assert slept == []  # falls back to the cache without retrying

    endpoint = fake_hub.endpoint
    fake_hub.add_file(REPO, "later.bin", b"later")
    fake_hub.start()
    assert fake_hub.endpoint == endpoint
    assert Path(hf_hub_download(REPO, "later.bin")).read_bytes() == b"later"


def test_stopped_hub_with_empty_cache_raises_local_entry_not_found(
    fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_hub.add_file(REPO, WEIGHTS, DATA)
    slept = skip_backoff_sleeps(monkeypatch)
    fake_hub.stop()

    with pytest.raises(LocalEntryNotFoundError) as raised:
        hf_hub_download(REPO, WEIGHTS)

    assert isinstance(raised.value, FileNotFoundError)
    assert isinstance(raised.value.__cause__, httpx2.ConnectError)
    assert slept == BACKOFF  # about 23 s without skip_backoff_sleeps


def test_offline_mode_fails_at_once_without_requests(fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_hub.add_file(REPO, WEIGHTS, DATA)
    fake_hub.add_file(REPO, "other.bin", b"other")
    cached = hf_hub_download(REPO, WEIGHTS)
    requests_before = len(fake_hub.requests)
    slept = skip_backoff_sleeps(monkeypatch)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    assert hf_hub_download(REPO, WEIGHTS) == cached
    with pytest.raises(LocalEntryNotFoundError):
        hf_hub_download(REPO, "other.bin")
    assert len(fake_hub.requests) == requests_before and slept == []


def test_server_error_falls_back_to_cache_or_raises_after_backoff(
    fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_hub.add_file(REPO, WEIGHTS, DATA)
    fake_hub.add_file(REPO, "other.bin", b"other")
    cached = hf_hub_download(REPO, WEIGHTS)
    slept = skip_backoff_sleeps(monkeypatch)
    fake_hub.fail_with = 500

    assert hf_hub_download(REPO, WEIGHTS) == cached
    assert slept == []
    with pytest.raises(LocalEntryNotFoundError) as raised:
        hf_hub_download(REPO, "other.bin")
    assert isinstance(raised.value.__cause__, HfHubHTTPError)
    assert raised.value.__cause__.response.status_code == 500
    assert slept == BACKOFF and fake_hub.count("GET", "other.bin") == 0


def test_truncated_body_is_retried_then_fails_without_caching(
    fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_hub.add_file(REPO, WEIGHTS, DATA)
    slept = skip_backoff_sleeps(monkeypatch)
    # Small chunks, so the bytes that did arrive are written and the retries resume with a Range request.
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64)
    fake_hub.truncate = True

    with pytest.raises(httpx2.RemoteProtocolError):
        hf_hub_download(REPO, WEIGHTS)

    ranges = [headers.get("Range") for headers in fake_hub.request_headers[2:]]
    assert fake_hub.count("GET") == 6 and slept == [1] * 5
    assert ranges == [f"bytes={len(DATA) // 2}-"] * 5
    assert not list(fake_hub.cache_dir.glob("models--*/snapshots/*/*/*"))
    assert not list(fake_hub.cache_dir.glob("models--*/blobs/*"))

    fake_hub.truncate = False
    assert Path(hf_hub_download(REPO, WEIGHTS)).read_bytes() == DATA


def test_corrupt_body_is_cached_unverified(fake_hub: FakeHub) -> None:
    fake_hub.add_file(REPO, WEIGHTS, DATA)
    fake_hub.corrupt = True

    path = Path(hf_hub_download(REPO, WEIGHTS))

    content = path.read_bytes()
    assert len(content) == len(DATA) and content != DATA and content[1:] == DATA[1:]
    assert path.resolve().name == hashlib.sha256(DATA).hexdigest()


@pytest.mark.parametrize(
    ("range_header", "status", "body", "content_range"),
    [
        ("bytes=10-19", 206, DATA[10:20], f"bytes 10-19/{len(DATA)}"),
        ("bytes=2000-", 206, DATA[2000:], f"bytes 2000-{len(DATA) - 1}/{len(DATA)}"),
        ("bytes=-5", 206, DATA[-5:], f"bytes {len(DATA) - 5}-{len(DATA) - 1}/{len(DATA)}"),
        (f"bytes={len(DATA)}-", 416, b"Requested range not satisfiable", f"bytes */{len(DATA)}"),
        ("lines=1-2", 200, DATA, None),
    ],
    ids=["closed", "open-ended", "suffix", "past-end", "unknown-unit"],
)
def test_range_requests(range_header: str, status: int, body: bytes, content_range: str | None) -> None:
    with FakeHub() as hub:
        commit = hub.add_file(REPO, WEIGHTS, DATA)
        url = f"{hub.endpoint}/{REPO}/resolve/main/{WEIGHTS}"
        request = urllib.request.Request(url, headers={"Range": range_header})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                got_status, headers, got_body = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            got_status, headers, got_body = error.code, error.headers, error.read()

    assert (got_status, got_body) == (status, body)
    assert headers.get("Content-Range") == content_range
    if status != 416:
        assert headers["X-Repo-Commit"] == commit
        assert headers["ETag"] == f'"{hashlib.sha256(DATA).hexdigest()}"'
