"""Fetching checkpoint files from the Hugging Face Hub, with errors a user can act on.

Everything goes through ``huggingface_hub.hf_hub_download``, so its cache, ``revision``,
``HF_HOME``/``HF_HUB_CACHE``, ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` behave as usual.
The commit a revision resolved to is read from the snapshot path and recorded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HubFile", "HubUnreachableError", "WeightsUnavailableError", "download", "hub_cache_dir", "hub_reachable", "looks_like_repo_id"]

logger = logging.getLogger(__name__)

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_SNAPSHOT = re.compile(r"[/\\]snapshots[/\\]([0-9a-f]{40})[/\\]")


class WeightsUnavailableError(RuntimeError):
    """Weights that cannot be had: not downloadable, not cached, not found."""


class HubUnreachableError(WeightsUnavailableError):
    """The Hub cannot be reached (or offline mode is on) and the file is not cached."""


@dataclass(frozen=True)
class HubFile:
    """A downloaded (or cached) Hub file and the commit it came from."""

    repo_id: str
    filename: str
    path: Path
    commit: str | None


def looks_like_repo_id(text: str) -> bool:
    """True for ``owner/name`` (optionally ``owner/name:filename``)."""
    return bool(_REPO_ID.match(text.split(":", 1)[0]))


def hub_cache_dir() -> Path:
    """Where huggingface_hub keeps downloads, as the environment sets it now."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return Path(home) / "hub"


def _offline_mode() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def hub_reachable(endpoint: str | None, timeout: float = 3.0) -> bool:
    """One quick request to the Hub's address. huggingface_hub retries an unreachable Hub
    with back-off for about 23 s before falling back to its cache; asking first lets a
    start without network go straight to the cache."""
    url = endpoint or "https://huggingface.co"
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
    except urllib.error.HTTPError:
        return True  # it answered, even if not with 200
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return True


def _verify_blob(path: Path) -> None:
    """Hub LFS blobs are named by the sha256 of their content; huggingface_hub does not
    check it, so a corrupted download would otherwise surface as a confusing load error."""
    blob = path.resolve()
    if not re.fullmatch(r"[0-9a-f]{64}", blob.name):
        return
    digest = hashlib.sha256()
    with blob.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != blob.name:
        raise WeightsUnavailableError(
            f"the cached file {path} is corrupted (its sha256 does not match the Hub's); delete {blob} and load again"
        )


def download(repo_id: str, filename: str, revision: str | None = None, *, reachable: bool | None = None) -> HubFile:
    """Fetch ``filename`` from ``repo_id`` (or take it from the cache).

    Raises ``FileNotFoundError`` when the repo has no such file (so callers can try
    another name) and ``WeightsUnavailableError`` for every other failure, with a
    message saying what to do. ``reachable`` passes on the answer of an earlier
    ``hub_reachable`` call, so that fetching several files probes the Hub once.
    """
    # Imported here: huggingface_hub reads HF_* variables at import, and the loader is
    # often configured (tests, the app) after pulse_core is imported.
    import huggingface_hub
    from huggingface_hub import errors

    endpoint = os.environ.get("HF_ENDPOINT") or None
    where = f"{filename!r} from Hub repo {repo_id!r}" + (f" at revision {revision!r}" if revision else "")
    local_hint = (
        "pass a local file or folder instead (CLI: --weights PATH; app: PULSE_WEIGHTS=PATH), "
        "or set HF_ENDPOINT to a reachable mirror"
    )
    offline = _offline_mode()
    if reachable is None:
        reachable = hub_reachable(endpoint)
    reachable = reachable and not offline
    try:
        path = huggingface_hub.hf_hub_download(
            repo_id, filename, revision=revision, endpoint=endpoint, cache_dir=str(hub_cache_dir()),
            etag_timeout=float(os.environ.get("HF_HUB_ETAG_TIMEOUT", 10)), local_files_only=not reachable,
        )
    # LocalEntryNotFoundError is also an EntryNotFoundError, so it must come first.
    except errors.LocalEntryNotFoundError:
        reason = "HF_HUB_OFFLINE is set" if offline else "the Hub could not be reached"
        raise HubUnreachableError(
            f"Cannot get {where}: {reason} and the file is not in the cache at {hub_cache_dir()}. "
            f"Connect to the internet and retry, or {local_hint}."
        ) from None
    except errors.RevisionNotFoundError:
        raise WeightsUnavailableError(f"Hub repo {repo_id!r} has no revision {revision!r}.") from None
    except errors.EntryNotFoundError:
        raise FileNotFoundError(f"Hub repo {repo_id!r} has no file {filename!r}"
                                + (f" at revision {revision!r}" if revision else "") + ".") from None
    except errors.GatedRepoError:
        raise WeightsUnavailableError(f"Hub repo {repo_id!r} is gated: accept its terms on the Hub and log in "
                                      "(`hf auth login` or HF_TOKEN), or " + local_hint + ".") from None
    except errors.RepositoryNotFoundError:
        raise WeightsUnavailableError(f"Hub repo {repo_id!r} does not exist (or is private: log in with "
                                      "`hf auth login` or set HF_TOKEN). Check the name, or " + local_hint + ".") from None
    except Exception as error:  # network and protocol errors of the HTTP client
        raise WeightsUnavailableError(f"Cannot get {where}: {type(error).__name__}: {error}. "
                                      f"Retry later, or {local_hint}.") from None
    _verify_blob(Path(path))
    match = _SNAPSHOT.search(str(path))
    commit = match.group(1) if match else None
    logger.info("weights %s from %s (commit %s)", filename, repo_id, commit)
    return HubFile(repo_id, filename, Path(path), commit)
