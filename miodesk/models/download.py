"""Downloads, imports and checks of models, with progress, cancel, resume and verification.

How a download goes (one model at a time):
1. Resolve every file first: for hub files a HEAD through huggingface_hub (honours HF_ENDPOINT,
   tokens, redirects) gives size, ETag and the commit; later files of the same model are fetched at
   that commit, so one model never mixes two revisions. Preset files come over plain HTTPS with
   size and sha256 from the catalog. Then the free disk space is checked for the whole model.
2. Each file streams into `models/.staging/<name>/<file>.part` with huggingface_hub's `http_get`
   (Range requests, retries on a cut connection). A `.meta.json` beside it remembers the ETag, so
   an interrupted download (network loss, app closed, Ctrl+C) resumes next time from where it was,
   if the server still has the same file. huggingface_hub 2.x's `hf_hub_download` deletes its
   partial file on any failure, which is why we call its lower-level pieces instead.
3. A finished file is checked: its size, and its sha256 (catalog value, or the hub's LFS ETag) or
   git blob sha1 (the ETag of small non-LFS files). A mismatch deletes it and raises DownloadError.
4. When every file is in, the staging folder is renamed to `models/<name>` (one rename: a model
   is either fully installed or not at all) and recorded in the manifest by the registry.

This module only transfers. What is built from installed weights (the codec's decoder graph, the
voice encoder, the preset voices) is run by the caller through `miodesk.model_setup`.

Cancel (the `cancel` event) stops within one network chunk and deletes this model's partial
files: nothing is left behind. A network failure keeps them for resuming.

Nothing here touches the network unless `download` is called; HF_HUB_OFFLINE refuses even then.
"""

from __future__ import annotations

import collections
import errno
import functools
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from miodesk import __version__
from miodesk.errors import DownloadError, MioDeskError
from miodesk.models.catalog import ModelEntry, format_bytes, get_entry
from miodesk.models.installed import (
    InstalledFile,
    InstalledModel,
    VerifyProblem,
    check_model,
    file_hashes,
    now_iso,
)
from miodesk.models.registry import ModelRegistry

log = logging.getLogger(__name__)

_DISK_RESERVE = 16 * 1000 * 1000  # keep a little space for the manifest and the OS
DISK_ERRNOS = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
_PROGRESS_INTERVAL_S = 0.1
# huggingface_hub reads the body in 10 MiB pieces; our cancel check and progress run once per
# piece, so smaller pieces keep Cancel prompt on slow connections.
_CHUNK_SIZE = 256 * 1024
IMPORT_HINT = "or download the files on another machine and use `miodesk models import PATH`"


class DownloadCancelled(DownloadError):
    """The user cancelled; the partial files of the model in progress were deleted."""


@dataclass
class Progress:
    """Progress of one model: bytes over all its files; `file` is the one being fetched."""

    name: str
    file: str
    bytes_done: int
    bytes_total: int
    speed_bps: float
    eta_s: float | None


@dataclass
class _RemoteFile:
    filename: str
    url: str
    size: int | None
    etag: str | None  # sha256 (LFS) or git blob sha1, as the hub reports; None for https
    sha256: str | None  # known checksum (catalog)
    commit: str
    headers: dict[str, str]


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def offline_mode() -> bool:
    """HF_HUB_OFFLINE (read now, not at import as huggingface_hub does)."""
    return _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("TRANSFORMERS_OFFLINE"))


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def _configure_hub() -> None:
    """Settings huggingface_hub reads from module constants at call time."""
    from huggingface_hub import constants as hf_constants

    # Nothing leaves the machine but the download itself: huggingface_hub's telemetry would fetch
    # an "agent registry" from the endpoint and write it under HF_HOME.
    hf_constants.HF_HUB_DISABLE_TELEMETRY = True
    hf_constants.DOWNLOAD_CHUNK_SIZE = min(hf_constants.DOWNLOAD_CHUNK_SIZE, _CHUNK_SIZE)


class _NullBar:
    """Stands in for huggingface_hub's tqdm bar: our own progress comes from the file writes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> _NullBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def update(self, n: float = 1) -> None:
        pass

    def close(self) -> None:
        pass


class _Meter:
    """Bytes done over a model, speed over the last few seconds, and throttled reports."""

    def __init__(self, name: str, total: int, done: int, callback: Callable[[Progress], None] | None) -> None:
        self.name = name
        self.total = total
        self.done = done
        self.callback = callback
        self.file = ""
        self._window: collections.deque[tuple[float, int]] = collections.deque()
        self._session_bytes = 0
        self._start = time.monotonic()
        self._last_report = 0.0

    def add(self, n: int) -> None:
        self.done += n
        self._session_bytes += n
        self.report()

    def set_done(self, done: int) -> None:
        self.done = done

    def speed(self) -> float:
        now = time.monotonic()
        self._window.append((now, self._session_bytes))
        while len(self._window) > 2 and now - self._window[0][0] > 3.0:
            self._window.popleft()
        t0, b0 = self._window[0]
        if now - t0 >= 0.5:
            return (self._session_bytes - b0) / (now - t0)
        elapsed = now - self._start  # early on, or a quick file: the average so far
        return self._session_bytes / elapsed if elapsed > 0 and self._session_bytes else 0.0

    def report(self, force: bool = False) -> None:
        now = time.monotonic()
        speed = self.speed()
        if self.callback is None or (not force and now - self._last_report < _PROGRESS_INTERVAL_S):
            return
        self._last_report = now
        remaining = max(self.total - self.done, 0)
        eta = remaining / speed if speed > 0 else (0.0 if remaining == 0 else None)
        self.callback(Progress(self.name, self.file, self.done, self.total, speed, eta))


class _ProgressFile:
    """The file http_get writes into: counts bytes, and stops the download when cancelled."""

    def __init__(self, handle: BinaryIO, meter: _Meter, cancel: threading.Event | None) -> None:
        self._handle = handle
        self._meter = meter
        self._cancel = cancel

    def write(self, data: bytes) -> int:
        if self._cancel is not None and self._cancel.is_set():
            raise DownloadCancelled("Download cancelled.")
        before = self._handle.tell()
        written = self._handle.write(data)
        self._meter.add(self._handle.tell() - before)
        return written

    def seek(self, offset: int, whence: int = 0) -> int:
        # http_get rewinds when a server ignores Range: take those bytes off the count.
        before = self._handle.tell()
        position = self._handle.seek(offset, whence)
        self._meter.set_done(self._meter.done - (before - position))
        return position

    def tell(self) -> int:
        return self._handle.tell()

    def truncate(self, size: int | None = None) -> int:
        return self._handle.truncate(size)

    def flush(self) -> None:
        self._handle.flush()


def _status_of(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _is_network_error(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    module = type(exc).__module__.split(".")[0]
    return module in {"httpx", "httpx2", "httpcore", "requests", "urllib3", "h11"}


def _disk_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_ERRNOS and _status_of(exc) is None


class _Transient(Exception):
    """A failure worth retrying (network, 5xx, 429); `reason` is for the final message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DownloadManager:
    """Fetches catalog models into the models folder; the registry records what arrived."""

    # Waits between attempts after a network error or a 5xx/429 answer (tests shorten them).
    retry_delays: tuple[float, ...] = (1.0, 3.0, 10.0)
    # Space kept free beyond the download itself (manifest, graphs, the OS).
    disk_reserve = _DISK_RESERVE

    def __init__(
        self,
        models_dir: Path | None = None,
        after_install: Callable[[InstalledModel, Callable[[Progress], None] | None], None] | None = None,
    ) -> None:
        """`after_install` runs once on each model this manager installs (the caller's post-install steps)."""
        self.after_install = after_install
        self.registry = ModelRegistry(models_dir)
        self.root = self.registry.root
        self.staging = self.registry.staging

    # What is installed: the registry's answers, here because a download starts by asking them.
    def installed(self) -> list[InstalledModel]:
        return self.registry.installed()

    def get_installed(self, name: str) -> InstalledModel | None:
        return self.registry.get_installed(name)

    def is_installed(self, name: str) -> bool:
        return self.registry.is_installed(name)

    def verify(self, full: bool = False) -> list[VerifyProblem]:
        return self.registry.verify(full=full)

    def remove(self, name: str) -> int:
        return self.registry.remove(name)

    # ------------------------------------------------------------------ download
    def download(
        self,
        names: list[str],
        progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> list[InstalledModel]:
        """Download the named catalog models that are not installed (or are damaged, or unverifiable)."""
        entries: list[ModelEntry] = []
        for name in names:
            entry = get_entry(name)
            if entry not in entries:
                entries.append(entry)
        results: list[InstalledModel] = []
        for entry in entries:
            existing = self.get_installed(entry.name)
            # A record rebuilt after manifest damage has no checksums: downloading again restores them.
            if existing is not None and not existing.unverifiable_files and not check_model(existing, full=False):
                log.info("%s is already installed", entry.name)
                results.append(existing)
                continue
            if offline_mode():
                raise DownloadError(
                    f"Cannot download {entry.name}: offline mode is on (HF_HUB_OFFLINE). "
                    f"Unset HF_HUB_OFFLINE to download, {IMPORT_HINT}."
                )
            model = self._download_one(entry, progress, cancel)
            if self.after_install is not None:
                self.after_install(model, progress)
            results.append(model)
        return results

    def _retrying(self, what: str, action: Callable[[], Any], cancel: threading.Event | None) -> Any:
        attempts = len(self.retry_delays) + 1
        for attempt in range(attempts):
            try:
                return action()
            except _Transient as exc:
                if attempt == attempts - 1:
                    raise DownloadError(
                        f"Could not download {what}: {exc.reason}. Check the network connection and try "
                        f"again (it resumes), set HF_ENDPOINT to a reachable mirror, {IMPORT_HINT}."
                    ) from None
                delay = self.retry_delays[attempt]
                log.warning("%s: %s; trying again in %.1f s", what, exc.reason, delay)
                if cancel is not None and cancel.wait(delay):
                    raise DownloadCancelled("Download cancelled.") from None
                if cancel is None:
                    time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _translate(self, entry: ModelEntry, filename: str, url: str, exc: BaseException) -> BaseException:
        """Map an exception from huggingface_hub/httpx to _Transient or a one-line DownloadError."""
        if isinstance(exc, MioDeskError):
            return exc
        name = type(exc).__name__
        if name == "OfflineModeIsEnabled":
            return DownloadError(
                f"Cannot download {entry.name}: offline mode is on (HF_HUB_OFFLINE). "
                f"Unset HF_HUB_OFFLINE to download, {IMPORT_HINT}."
            )
        status = _status_of(exc)
        if status is not None:
            if status in (408, 429) or status >= 500:
                return _Transient(f"the server answered HTTP {status} for {filename}")
            if status in (401, 403, 404):
                return DownloadError(
                    f"{filename} of {entry.name} is not available at {url} (HTTP {status}). If HF_ENDPOINT "
                    f"points to a mirror, it may not have this file; unset it or {IMPORT_HINT[3:]}."
                )
            return DownloadError(f"Downloading {filename} of {entry.name} failed: HTTP {status} from {url}.")
        if _disk_error(exc):
            return DownloadError(
                f"The disk is full: {entry.name} could not be saved in {self.root}. "
                f"Free some space (it needs {entry.size_text}) and download again."
            )
        if _is_network_error(exc):
            reason = str(exc).splitlines()[0] if str(exc) else name
            return _Transient(f"{reason} ({url})")
        return exc

    def _resolve(self, entry: ModelEntry) -> list[_RemoteFile]:
        if entry.source == "https":
            return [
                _RemoteFile(
                    f,
                    entry.url_for(f),
                    entry.size_bytes if len(entry.files) == 1 else None,
                    None,
                    entry.sha256.get(f),
                    entry.revision,
                    {},
                )
                for f in entry.files
            ]
        from huggingface_hub import get_hf_file_metadata, hf_hub_url
        from huggingface_hub.utils import build_hf_headers

        _configure_hub()
        endpoint = hub_endpoint()
        revision = entry.revision
        remote: list[_RemoteFile] = []
        for filename in entry.files:
            url = hf_hub_url(entry.repo, filename, revision=revision, endpoint=endpoint)
            headers = build_hf_headers(library_name="miodesk", library_version=__version__)
            try:
                meta = get_hf_file_metadata(url, headers=headers, endpoint=endpoint, retry_on_errors=False)
            except Exception as exc:  # translated below; anything unknown propagates as is
                raise self._translate(entry, filename, url, exc) from None
            if not meta.commit_hash or not meta.etag:
                raise DownloadError(
                    f"{endpoint} does not answer like a Hugging Face hub (no commit or ETag for {filename}). "
                    f"Check HF_ENDPOINT, {IMPORT_HINT}."
                )
            revision = meta.commit_hash  # the rest of this model comes from the same commit
            remote.append(
                _RemoteFile(
                    filename, meta.location, meta.size, meta.etag, entry.sha256.get(filename), meta.commit_hash, headers
                )
            )
        return remote

    def _download_one(
        self, entry: ModelEntry, progress: Callable[[Progress], None] | None, cancel: threading.Event | None
    ) -> InstalledModel:
        stage = self.staging / entry.name
        stage.mkdir(parents=True, exist_ok=True)
        try:
            remote = self._retrying(entry.name, lambda: self._resolve(entry), cancel)
            total = sum(r.size if r.size is not None else entry.size_bytes // len(remote) for r in remote)
            done = sum(self._usable_partial(stage, r) for r in remote)
            self._check_space(entry, stage, total - done)
            meter = _Meter(entry.name, total, done, progress)
            for r in remote:
                self._retrying(
                    f"{r.filename} of {entry.name}", functools.partial(self._fetch, entry, r, stage, meter, cancel),
                    cancel,
                )
            meter.report(force=True)
            return self._install(entry, remote, stage)
        except DownloadCancelled:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        except DownloadError as exc:
            if "disk is full" in str(exc):
                shutil.rmtree(stage, ignore_errors=True)  # give the space back
            raise
        finally:
            self.registry.tidy_staging(stage)

    def _check_space(self, entry: ModelEntry, stage: Path, needed: int) -> None:
        free = shutil.disk_usage(stage).free
        if free < needed + self.disk_reserve:
            raise DownloadError(
                f"Not enough disk space for {entry.name}: it needs {format_bytes(needed + self.disk_reserve)}, "
                f"{format_bytes(free)} are free in {self.root}. Free some space and try again."
            )

    @staticmethod
    def _meta_path(stage: Path, filename: str) -> Path:
        return stage / f"{filename}.meta.json"

    def _usable_partial(self, stage: Path, r: _RemoteFile) -> int:
        """Bytes already here from an earlier attempt at the same file (same ETag/URL); else 0."""
        part, done = stage / f"{r.filename}.part", stage / r.filename
        meta_path = self._meta_path(stage, r.filename)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = None
        same = isinstance(meta, dict) and meta.get("etag") == r.etag and meta.get("url_key") == self._url_key(r)
        if same and done.is_file() and (r.size is None or done.stat().st_size == r.size):
            return done.stat().st_size
        for stale in (part, done, meta_path):
            if not same:
                stale.unlink(missing_ok=True)
        if part.is_file():
            size = part.stat().st_size
            if r.size is not None and size > r.size:
                part.unlink()
                return 0
            return size
        return 0

    @staticmethod
    def _url_key(r: _RemoteFile) -> str:
        # Hub CDN URLs are signed and change per request; the ETag identifies the content there.
        return r.filename if r.etag else r.url

    def _fetch(
        self, entry: ModelEntry, r: _RemoteFile, stage: Path, meter: _Meter, cancel: threading.Event | None
    ) -> None:
        from huggingface_hub.file_download import http_get

        _configure_hub()
        final, part = stage / r.filename, stage / f"{r.filename}.part"
        meter.file = r.filename
        if final.is_file():
            return
        meta_path = self._meta_path(stage, r.filename)
        if not meta_path.is_file():
            meta_path.write_text(json.dumps({"etag": r.etag, "url_key": self._url_key(r)}), encoding="utf-8")
        resume = part.stat().st_size if part.is_file() else 0
        meter.report(force=True)
        try:
            with part.open("ab") as handle:
                http_get(
                    r.url,
                    _ProgressFile(handle, meter, cancel),  # type: ignore[arg-type]
                    resume_size=resume,
                    headers=r.headers,
                    expected_size=r.size,
                    displayed_filename=r.filename,
                    tqdm_class=_NullBar,  # type: ignore[arg-type]
                )
        except Exception as exc:
            translated = self._translate(entry, r.filename, r.url, exc)
            if translated is exc and isinstance(exc, OSError) and "Consistency check failed" in str(exc):
                part.unlink(missing_ok=True)
                translated = DownloadError(
                    f"{r.filename} of {entry.name} arrived with the wrong size and was deleted; download again."
                )
            raise translated from None
        self._check_file(entry, r, part)
        part.replace(final)

    def _check_file(self, entry: ModelEntry, r: _RemoteFile, part: Path) -> None:
        size = part.stat().st_size
        sha256, blob_sha1 = file_hashes(part)
        expected = r.sha256 or (r.etag if r.etag and len(r.etag) == 64 else None)
        problem = None
        if r.size is not None and size != r.size:
            problem = f"it is {size} bytes instead of {r.size}"
        elif expected and sha256 != expected.lower():
            problem = "its sha256 checksum is wrong"
        elif not expected and r.etag and len(r.etag) == 40 and blob_sha1 != r.etag.lower():
            problem = "its checksum (git blob sha1) is wrong"
        if problem:
            part.unlink(missing_ok=True)
            self._meta_path(part.parent, r.filename).unlink(missing_ok=True)
            raise DownloadError(
                f"{r.filename} of {entry.name} was downloaded but {problem}, so it was deleted. Try again; "
                "if it happens again the server or mirror (HF_ENDPOINT) serves a different file."
            )

    def _install(self, entry: ModelEntry, remote: list[_RemoteFile], stage: Path) -> InstalledModel:
        files = []
        for r in remote:
            self._meta_path(stage, r.filename).unlink(missing_ok=True)
            path = stage / r.filename
            files.append(InstalledFile(r.filename, path.stat().st_size, file_hashes(path)[0]))
        model = InstalledModel(
            name=entry.name,
            kind=entry.kind,
            folder=self.root / entry.name,
            files=files,
            revision=remote[0].commit if remote else entry.revision,
            source=entry.source,
            repo=entry.repo,
            installed_at=now_iso(),
        )
        self.registry.place(stage, model)
        return model
