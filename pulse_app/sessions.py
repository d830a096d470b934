"""Per-session temporary folders: a search's PNGs, zip and stop flag live in its session's folder,
which is deleted when the page is closed, and in any case once it is ``ttl`` seconds old (API
clients never close a page). Folder names are hashes of the session id, so nothing needs to be
remembered between requests and no folder name reveals a session.
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["SessionFiles"]


class SessionFiles:
    """Creates, finds and deletes the folders of sessions under one private root."""

    def __init__(self, ttl: int, root: Path | None = None) -> None:
        self.ttl = ttl
        self._root = root
        self._lock = threading.Lock()  # guards only the lazy creation of the root

    @property
    def root(self) -> Path:
        with self._lock:
            if self._root is None:
                # Created on first use, not at import; readable by this user only; removed at exit.
                self._root = Path(tempfile.mkdtemp(prefix="pulse-app-"))
                atexit.register(shutil.rmtree, self._root, True)
            return self._root

    def path_of(self, session: str | None) -> Path:
        """Where the folder of ``session`` is (whether or not it exists)."""
        return self.root / hashlib.sha256((session or "no-session").encode()).hexdigest()[:32]

    def folder(self, session: str | None) -> Path:
        """The folder of ``session`` (created if missing)."""
        path = self.path_of(session)
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    def new_run(self, session: str | None) -> Path:
        """A fresh folder for one run inside the session's folder; old sessions are swept first."""
        self.sweep()
        return Path(tempfile.mkdtemp(prefix="run-", dir=self.folder(session)))

    def delete(self, session: str | None) -> None:
        """Delete everything ``session`` wrote."""
        shutil.rmtree(self.path_of(session), ignore_errors=True)

    def sweep(self) -> None:
        """Delete the folders of sessions whose files are all older than the time to live."""
        limit = time.time() - self.ttl
        for folder in self.root.iterdir():
            try:
                newest = max([folder.stat().st_mtime] + [p.stat().st_mtime for p in folder.rglob("*")])
            except FileNotFoundError:  # being deleted by another request
                continue
            if newest < limit:
                shutil.rmtree(folder, ignore_errors=True)
