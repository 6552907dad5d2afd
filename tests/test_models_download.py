"""DownloadManager against a real HTTP hub on loopback (tests/hub_server.py): no mocks.

Disk full is tested two ways: always with RLIMIT_FSIZE in a subprocess (works without root:
writes past the limit fail with EFBIG, which MioDesk treats like a full disk), and, where this
process may mount, with a real 1 MiB tmpfs (ENOSPC, and the free-space check before a download).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hub_server import FakeHub
from small_gguf import small_gguf

from miodesk.errors import DownloadError, ModelError
from miodesk.model_setup import ModelInstaller
from miodesk.models.download import DownloadCancelled, DownloadManager, Progress
from miodesk.models.installed import sha256_file

GOLDEN = Path(__file__).parent / "data" / "golden"
LLM = "MioTTS-0.1B-Q8_0"
LLM_REPO = "Aratako/MioTTS-GGUF"
LLM_FILE = f"{LLM}.gguf"


def payload(n: int, seed: int = 1) -> bytes:
    return (hashlib.sha256(str(seed).encode()).digest() * (n // 32 + 1))[:n]


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    with FakeHub(max_seconds=60) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("MIODESK_PRESETS_BASE_URL", f"{server.url}/raw/presets/")
        yield server


@pytest.fixture
def manager(tmp_path: Path) -> ModelInstaller:
    m = ModelInstaller(tmp_path / "models")  # downloads plus post-install steps and imports
    m.retry_delays = (0.01, 0.01)
    return m


def leftovers(m: DownloadManager) -> list[str]:
    """Files and folders under the models folder other than the manifest."""
    return sorted(str(p.relative_to(m.root)) for p in m.root.rglob("*") if p.name != "manifest.json")


def test_full_download_with_progress(hub: FakeHub, manager: DownloadManager) -> None:
    data = payload(700_000)
    hub.add(LLM_REPO, LLM_FILE, data)
    events: list[Progress] = []
    [model] = manager.download([LLM], progress=events.append)
    assert model.main_file == manager.root / LLM / LLM_FILE
    assert model.main_file.read_bytes() == data
    assert (
        model.files[0].sha256 == hashlib.sha256(data).hexdigest()
        and model.revision == "0123456789abcdef" * 2 + "01234567"
    )
    assert events and events[-1].bytes_done == events[-1].bytes_total == len(data)
    assert all(a.bytes_done <= b.bytes_done for a, b in zip(events, events[1:], strict=False))
    assert {e.name for e in events} == {LLM} and {e.file for e in events} == {LLM_FILE}
    assert manager.is_installed(LLM) and [m.name for m in manager.installed()] == [LLM]
    assert DownloadManager(manager.root).is_installed(LLM)  # recorded in the manifest
    assert leftovers(manager) == [LLM, f"{LLM}/{LLM_FILE}"]
    # Installed: asking again touches no network.
    before = len(hub.requests())
    assert manager.download([LLM])[0].name == LLM
    assert len(hub.requests()) == before


def test_codec_download_builds_the_decoder_once(hub: FakeHub, manager: DownloadManager) -> None:
    codec = GOLDEN / "codec" / "24k"
    for name in ("config.yaml", "model.safetensors"):
        hub.add("Aratako/MioCodec-25Hz-24kHz", name, (codec / name).read_bytes())
    [model] = manager.download(["MioCodec-25Hz-24kHz"])
    assert [f.path for f in model.files] == ["config.yaml", "model.safetensors"]
    [graph] = model.derived
    assert graph.endswith(".onnx") and Path(graph).is_file()
    graph_bytes = os.path.getsize(graph)
    assert manager.remove("MioCodec-25Hz-24kHz") == model.size_bytes + graph_bytes
    assert not Path(graph).exists() and not model.folder.exists() and not manager.is_installed(model.name)


def test_preset_download_over_https_adds_the_voice(hub: FakeHub, manager: DownloadManager) -> None:
    from miodesk.tts.voices import VoiceStore

    hub.add_raw("presets/jp_female.pt", (GOLDEN / "presets" / "jp_female.pt").read_bytes())
    [model] = manager.download(["jp_female"])
    assert model.source == "https" and sha256_file(model.main_file).startswith("b9fb6483")
    voice = VoiceStore().get("jp_female")
    assert voice.metadata["kind"] == "preset"
    assert [r.path for r in hub.requests("GET")] == ["/raw/presets/jp_female.pt"]


def test_resume_after_a_cut_connection(hub: FakeHub, manager: DownloadManager) -> None:
    data = payload(600_000, seed=2)
    hub.add(LLM_REPO, LLM_FILE, data)
    hub.fail("cut", LLM_FILE)
    [model] = manager.download([LLM])
    assert model.main_file.read_bytes() == data
    gets = hub.requests("GET")
    assert len(gets) == 2 and gets[0].range is None and gets[1].status == 206
    # It resumes after the last whole piece it wrote (at most the 300000 bytes that came).
    assert 0 < int(gets[1].range.removeprefix("bytes=").rstrip("-")) <= 300_000


def test_interrupted_download_resumes_in_a_later_session(hub: FakeHub, manager: DownloadManager) -> None:
    data = payload(1_200_000, seed=3)
    hub.add(LLM_REPO, LLM_FILE, data)
    hub.piece, hub.delay_s = 32 * 1024, 0.01

    class AppClosed(Exception):
        pass

    def close_app(p: Progress) -> None:
        if p.bytes_done > 0:
            raise AppClosed

    with pytest.raises(AppClosed):
        manager.download([LLM], progress=close_app)
    assert not manager.is_installed(LLM) and not (manager.root / LLM).exists()
    [part] = (manager.root / ".staging" / LLM).glob("*.part")
    kept = part.stat().st_size
    assert 0 < kept < len(data)

    hub.delay_s = 0
    [model] = DownloadManager(manager.root).download([LLM])
    assert model.main_file.read_bytes() == data
    assert (f"bytes={kept}-", 206) in [(r.range, r.status) for r in hub.requests("GET")]
    assert leftovers(manager) == [LLM, f"{LLM}/{LLM_FILE}"]


def test_wrong_checksum_is_deleted_and_reported(hub: FakeHub, manager: DownloadManager) -> None:
    hub.add(LLM_REPO, LLM_FILE, payload(50_000), etag=hashlib.sha256(b"another file").hexdigest())
    with pytest.raises(DownloadError, match="sha256 checksum is wrong.*deleted"):
        manager.download([LLM])
    assert not manager.is_installed(LLM) and leftovers(manager) == []


def test_wrong_checksum_of_a_small_file(hub: FakeHub, manager: DownloadManager) -> None:
    hub.add("Aratako/MioCodec-25Hz-24kHz", "config.yaml", b"a: 1\n", etag="0" * 40)
    hub.add("Aratako/MioCodec-25Hz-24kHz", "model.safetensors", payload(5000))
    with pytest.raises(DownloadError, match="git blob sha1"):
        manager.download(["MioCodec-25Hz-24kHz"])
    assert leftovers(manager) == []


def test_wrong_preset_file_is_refused(hub: FakeHub, manager: DownloadManager) -> None:
    good = (GOLDEN / "presets" / "jp_male.pt").read_bytes()
    hub.add_raw("presets/jp_male.pt", good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(DownloadError, match="sha256"):
        manager.download(["jp_male"])
    assert leftovers(manager) == []


def test_missing_file_is_a_clear_404(hub: FakeHub, manager: DownloadManager) -> None:
    with pytest.raises(DownloadError, match=r"HTTP 404.*HF_ENDPOINT") as info:
        manager.download(["MioTTS-0.4B-Q8_0"])
    assert "\n" not in str(info.value)
    assert len(hub.requests()) == 1  # not retried
    assert leftovers(manager) == []


def test_server_errors_are_retried(hub: FakeHub, manager: DownloadManager) -> None:
    data = payload(20_000, seed=4)
    hub.add(LLM_REPO, LLM_FILE, data)
    hub.fail("500", LLM_FILE, method="HEAD")
    hub.fail("500", LLM_FILE, method="GET")
    [model] = manager.download([LLM])
    assert model.main_file.read_bytes() == data
    assert [(r.method, r.status) for r in hub.requests()] == [("HEAD", 500), ("HEAD", 200), ("GET", 500), ("GET", 200)]


def test_persistent_server_error_gives_up_with_advice(hub: FakeHub, manager: DownloadManager) -> None:
    hub.add(LLM_REPO, LLM_FILE, payload(20_000))
    hub.fail("500", LLM_FILE, method="GET", times=10)
    with pytest.raises(DownloadError, match=r"HTTP 500.*try again.*HF_ENDPOINT.*models import"):
        manager.download([LLM])
    assert len(hub.requests("GET")) == len(manager.retry_delays) + 1


def test_unreachable_hub(manager: DownloadManager, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(DownloadError, match="Could not download.*network"):
        manager.download([LLM])


def test_offline_mode_refuses_to_connect(hub: FakeHub, manager: DownloadManager, monkeypatch) -> None:
    hub.add(LLM_REPO, LLM_FILE, payload(10_000))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadError, match="HF_HUB_OFFLINE.*models import"):
        manager.download([LLM])
    assert hub.requests() == []


def test_cancel_mid_file_leaves_nothing(hub: FakeHub, manager: DownloadManager) -> None:
    hub.add(LLM_REPO, LLM_FILE, payload(1_500_000, seed=5))
    hub.piece, hub.delay_s = 32 * 1024, 0.01
    cancel = threading.Event()
    seen: list[int] = []

    def on_progress(p: Progress) -> None:
        seen.append(p.bytes_done)
        if p.bytes_done > 0:
            cancel.set()

    with pytest.raises(DownloadCancelled):
        manager.download([LLM], progress=on_progress, cancel=cancel)
    assert max(seen) < 1_500_000
    assert not manager.is_installed(LLM) and leftovers(manager) == []


_FSIZE_SCRIPT = """
import resource, sys
from pathlib import Path
from miodesk.models.download import DownloadManager
from miodesk.errors import DownloadError
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
m = DownloadManager(Path(sys.argv[1]))
m.retry_delays = ()
try:
    m.download(["MioTTS-0.1B-Q8_0"])
except DownloadError as e:
    print(e)
    sys.exit(3)
"""


def test_disk_full_file_size_limit(hub: FakeHub, tmp_path: Path) -> None:
    hub.add(LLM_REPO, LLM_FILE, payload(600_000))
    root = tmp_path / "models"
    done = subprocess.run(
        [sys.executable, "-c", _FSIZE_SCRIPT, str(root)], capture_output=True, text=True, timeout=60, env=os.environ
    )
    assert done.returncode == 3, done.stderr
    assert "disk is full" in done.stdout
    assert [p.name for p in root.iterdir()] == []  # the partial file was deleted to give the space back


@pytest.fixture
def tiny_disk(tmp_path: Path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root); the RLIMIT_FSIZE test covers disk full")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_disk_full_real_tmpfs(hub: FakeHub, tiny_disk: Path) -> None:
    manager = DownloadManager(tiny_disk)
    manager.retry_delays = ()
    manager.disk_reserve = 0
    hub.add(LLM_REPO, LLM_FILE, payload(2_000_000))
    with pytest.raises(DownloadError, match="Not enough disk space"):
        manager.download([LLM])
    assert hub.requests("GET") == []  # refused before downloading
    # The disk fills up while downloading (another program writes): ENOSPC mid-file.
    hub.add(LLM_REPO, LLM_FILE, payload(600_000))
    hub.piece, hub.delay_s = 32 * 1024, 0.01
    filler = tiny_disk / "filler"

    def fill_disk(p: Progress) -> None:
        if p.bytes_done > 0 and not filler.exists():
            with filler.open("wb") as f:
                try:
                    f.write(b"\0" * (1 << 20))
                except OSError:
                    pass

    with pytest.raises(DownloadError, match="disk is full"):
        manager.download([LLM], progress=fill_disk)
    assert not manager.is_installed(LLM) and not list(tiny_disk.rglob("*.part"))


# ---------------------------------------------------------------------------------- import


def test_import_gguf(manager: DownloadManager, tmp_path: Path) -> None:
    from miodesk.synthetic.gguf import write_test_gguf

    source = tmp_path / "MioTTS-0.1B-Q8_0.gguf"
    write_test_gguf(source)
    model = manager.import_path(source)
    assert model.name == LLM and model.kind == "llm" and model.source == "import"
    assert model.main_file.read_bytes() == source.read_bytes() and source.exists()
    custom = manager.import_path(source, name="my-voice-model")
    assert custom.name == "my-voice-model" and manager.is_installed("my-voice-model")
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf at all")
    with pytest.raises(ModelError, match="not a GGUF"):
        manager.import_path(bad)


def test_import_codec_folder_and_preset(manager: DownloadManager, tmp_path: Path) -> None:
    from miodesk.tts.voices import VoiceStore

    folder = tmp_path / "some-codec"
    shutil.copytree(GOLDEN / "codec" / "24k", folder)
    codec = manager.import_path(folder)
    assert codec.name == "MioCodec-25Hz-24kHz" and codec.kind == "codec"
    assert Path(codec.derived[0]).is_file()
    preset = manager.import_path(GOLDEN / "presets" / "jp_female.pt")
    assert preset.name == "jp_female" and preset.kind == "preset" and "jp_female" in VoiceStore().names()
    with pytest.raises(ModelError, match="voices import"):
        manager.import_path(GOLDEN / "presets" / "jp_female.npy")
    with pytest.raises(ModelError, match="not a model folder"):
        manager.import_path(tmp_path)


def test_verify_detects_changes_and_remove_frees_space(manager: DownloadManager, tmp_path: Path) -> None:
    source = tmp_path / "x.gguf"
    source.write_bytes(small_gguf(10_000))
    model = manager.import_path(source, name=LLM)
    assert manager.verify() == [] and manager.verify(full=True) == []
    data = bytearray(model.main_file.read_bytes())
    data[100] ^= 0xFF
    model.main_file.write_bytes(bytes(data))  # same size, other content
    assert manager.verify() == []
    [problem] = manager.verify(full=True)
    assert problem.problem == "sha256" and problem.name == LLM
    model.main_file.write_bytes(bytes(data[:-10]))
    assert [p.problem for p in manager.verify()] == ["size"]
    assert manager.remove(LLM) == len(data) - 10
    assert not manager.is_installed(LLM) and leftovers(manager) == []
    with pytest.raises(ModelError, match="not installed"):
        manager.remove(LLM)


def test_engine_defaults_use_the_manifest(manager: DownloadManager, tmp_path: Path) -> None:
    from miodesk import paths
    from miodesk.tts.engine import default_codec_path, default_model_path

    with pytest.raises(ModelError, match="models download MioTTS-0.1B-Q8_0"):
        default_model_path()
    home = ModelInstaller(paths.models_dir())
    source = tmp_path / "a.gguf"
    source.write_bytes(small_gguf(1000))
    model = home.import_path(source, name="MioTTS-0.6B-Q8_0")
    assert default_model_path() == model.main_file
    codec = home.import_path(GOLDEN / "codec" / "24k")
    assert default_codec_path() == codec.folder
    model.main_file.write_bytes(b"GGUF")
    with pytest.raises(ModelError, match="models download MioTTS-0.6B-Q8_0"):
        default_model_path()
