"""Fetching checkpoint files from the Hugging Face Hub, with errors a user can act on.

Everything goes through ``huggingface_hub.hf_hub_download``, so its cache, ``revision``,
``HF_HOME``/``HF_HUB_CACHE``, ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` behave as usual.
The commit a revision resolved to is read from the snapshot path and recorded.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HubFile", "WeightsUnavailableError", "download", "hub_cache_dir", "looks_like_repo_id"]

logger = logging.getLogger(__name__)

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_SNAPSHOT = re.compile(r"[/\\]snapshots[/\\]([0-9a-f]{40})[/\\]")


class WeightsUnavailableError(RuntimeError):
    """Weights that cannot be had: not downloadable, not cached, not found."""


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


def download(repo_id: str, filename: str, revision: str | None = None) -> HubFile:
    """Fetch ``filename`` from ``repo_id`` (or take it from the cache).

    Raises ``FileNotFoundError`` when the repo has no such file (so callers can try
    another name) and ``WeightsUnavailableError`` for every other failure, with a
    message saying what to do.
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
    try:
        path = huggingface_hub.hf_hub_download(
            repo_id, filename, revision=revision, endpoint=endpoint, cache_dir=str(hub_cache_dir()),
            etag_timeout=float(os.environ.get("HF_HUB_ETAG_TIMEOUT", 10)),
        )
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
    except errors.LocalEntryNotFoundError:
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
        reason = "HF_HUB_OFFLINE is set" if offline else "the Hub could not be reached"
        raise WeightsUnavailableError(
            f"Cannot get {where}: {reason} and the file is not in the cache at {hub_cache_dir()}. "
            f"Connect to the internet and retry, or {local_hint}."
        ) from None
    except (errors.HfHubHTTPError, OSError) as error:
        raise WeightsUnavailableError(f"Cannot get {where}: {error}. Retry later, or {local_hint}.") from None
    match = _SNAPSHOT.search(str(path))
    commit = match.group(1) if match else None
    logger.info("weights %s from %s (commit %s)", filename, repo_id, commit)
    return HubFile(repo_id, filename, Path(path), commit)
