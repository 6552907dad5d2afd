"""Gapless playback through PortAudio: the pipeline writes PCM into a ring buffer, the callback drains it.

The PortAudio callback never allocates, logs or waits on anything but a short lock: it copies what
is buffered, writes silence for the rest and counts an underrun when the buffer ran dry while more
audio was still expected. Position events ("utterance 7 is now audible") are markers placed at a
frame of the written stream; a small dispatcher thread fires them when the callback has consumed
that frame and the device's output latency has passed, so highlighting follows what is heard.
"""

from __future__ import annotations

import ctypes
import logging
import sys
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from miodesk.audio.resample import StreamResampler
from miodesk.errors import MioDeskError

log = logging.getLogger(__name__)


DEVICE_STALL_S = 2.0  # no callback for this long while open: the device is gone (unplugged, server died)
_RUN_SLOTS = 256  # remembered runs of real audio; far more than fit in the device latency
# Audio still in flight after PortAudio's latency: sound servers add their own buffering (a JACK
# period or two, PulseAudio's server buffer), which PortAudio's latency leaves out.
TAIL_GRACE_S = 0.2
MAX_PLAUSIBLE_LATENCY_S = 2.0  # Bluetooth outputs reach ~0.5 s; a report beyond this is a driver bug
# Rates tried, in order, after the source rate and the device's default (the usual mixer rates first).
COMMON_RATES = (48000, 44100, 96000, 88200, 32000, 24000, 22050, 16000, 192000)
# A fade-out falls evenly in decibels, as the ear hears loudness, down to this gain (-48 dB, well below a
# quiet room), then cuts to silence. Over 8 s the level halves every second.
FADE_FLOOR = 1 / 256

_ALSA_ERROR_HANDLER = None  # kept referenced: ALSA calls it for as long as the process lives


def silence_alsa_messages() -> None:
    """Stop libasound printing "underrun occurred" and similar lines into the user's terminal.

    PortAudio's ALSA host reports these itself (as stream status), so the text is only noise.
    """
    global _ALSA_ERROR_HANDLER
    if _ALSA_ERROR_HANDLER is not None or not sys.platform.startswith("linux"):
        return
    try:
        asound = ctypes.cdll.LoadLibrary("libasound.so.2")
    except OSError:
        return  # no ALSA: nothing prints
    handler_type = ctypes.CFUNCTYPE(
        None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
    )
    _ALSA_ERROR_HANDLER = handler_type(lambda *_args: None)
    asound.snd_lib_error_set_handler(_ALSA_ERROR_HANDLER)


class Fade(str, Enum):
    """Where the player's fade-out is (`AudioPlayer.fade_state`)."""

    NONE = "none"  # full gain
    ARMED = "armed"  # waiting for the marker it starts at
    FADING = "fading"  # ramping down (or not yet heard to its end)
    SILENT = "silent"  # the ramp's end has been heard: silence until a new reading, resume() or flush()


class AudioDeviceError(MioDeskError):
    """No usable output device, or the device went away."""


@dataclass
class Marker:
    frame: int  # position in the device-rate stream at which `payload` becomes audible
    payload: Any


class RingBuffer:
    """Fixed-size float32 FIFO; `read_into` is called from the audio callback and never allocates."""

    def __init__(self, capacity: int) -> None:
        self._data = np.zeros(capacity, dtype=np.float32)
        self._capacity = capacity
        self._read = 0
        self._size = 0
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        return self._capacity

    def __len__(self) -> int:
        return self._size

    def free(self) -> int:
        return self._capacity - self._size

    def write(self, samples: np.ndarray) -> int:
        """Append as much of `samples` as fits; returns how many were taken."""
        with self._lock:
            count = min(len(samples), self._capacity - self._size)
            start = (self._read + self._size) % self._capacity
            first = min(count, self._capacity - start)
            self._data[start : start + first] = samples[:first]
            self._data[: count - first] = samples[first:count]
            self._size += count
        return count

    def read_into(self, out: np.ndarray) -> int:
        """Fill `out` from the buffer (zeros where it runs dry); returns how many real samples it got."""
        with self._lock:
            count = min(len(out), self._size)
            first = min(count, self._capacity - self._read)
            out[:first] = self._data[self._read : self._read + first]
            out[first:count] = self._data[: count - first]
            out[count:] = 0.0
            self._read = (self._read + count) % self._capacity
            self._size -= count
        return count

    def clear(self) -> None:
        with self._lock:
            self._read = 0
            self._size = 0


def _name_key(text: str) -> str:
    """How device names compare: NFKC (full/half-width forms, composed and decomposed accents from
    CoreAudio are one) and casefold (full Unicode case-insensitivity: "STRASSE" finds "Straße")."""
    return unicodedata.normalize("NFKC", text).casefold()


def find_output_device(device: str | int | None) -> int | None:
    """Resolve a device index or a (part of a) device name; None means the system default.

    Names come from WASAPI, MME, CoreAudio or ALSA and can be any Unicode.
    """
    import sounddevice

    if device is None or device == "":
        return None
    try:
        devices = sounddevice.query_devices()
    except Exception as error:  # PortAudio missing or broken
        raise AudioDeviceError(f"Cannot list audio devices: {error}") from error
    if isinstance(device, int) or str(device).isdigit():
        index = int(device)
        if 0 <= index < len(devices) and devices[index]["max_output_channels"] > 0:
            return index
        raise AudioDeviceError(f"There is no audio output device number {index}.")
    wanted = _name_key(str(device))
    matches = [
        i
        for i, info in enumerate(devices)
        if info["max_output_channels"] > 0 and wanted in _name_key(info["name"])
    ]
    if not matches:
        names = ", ".join(info["name"] for info in devices if info["max_output_channels"] > 0)
        raise AudioDeviceError(f"No audio output device matches '{device}'. Available: {names or 'none'}.")
    return matches[0]


class AudioPlayer:
    """Mono float32 playback with pause/resume, volume, markers and an underrun counter."""

    def __init__(
        self,
        sample_rate: int,
        device: str | int | None = None,
        volume: float = 1.0,
        buffer_seconds: float = 4.0,
        latency_seconds: float = 0.15,
        on_marker: Callable[[Any], None] | None = None,
    ) -> None:
        self.source_rate = sample_rate
        self.device = find_output_device(device)
        self.volume = volume
        # A reader needs no low latency (highlighting accounts for it) but must never stutter, even
        # while the synthesis threads keep both cores busy: ~150 ms of device buffer absorbs that.
        self.latency_seconds = latency_seconds
        self._on_marker = on_marker
        self.device_rate = self._choose_device_rate(sample_rate)
        self._resampler = StreamResampler(sample_rate, self.device_rate) if self.device_rate != sample_rate else None
        self._buffer = RingBuffer(int(buffer_seconds * self.device_rate))
        self._markers: deque[Marker] = deque()
        self._markers_lock = threading.Lock()
        self._dispatch_lock = threading.Lock()
        self._queue_lock = threading.Lock()  # a write's cancel check + write against flush()
        self._frames_written = 0  # device-rate frames handed to the ring buffer
        self.frames_played = 0  # device-rate frames of real audio the callback consumed
        self.underruns = 0
        # Where runs of real audio went in the device's output stream (silence fills between them),
        # so the audible position can be found `latency` frames back. Fixed arrays: no allocation
        # in the callback.
        self._frames_output = 0  # every frame handed to PortAudio, silence included
        self._audio_end_output = 0  # the output frame just after the last real sample
        self._run_output_start = np.zeros(_RUN_SLOTS, dtype=np.int64)
        self._run_played_start = np.zeros(_RUN_SLOTS, dtype=np.int64)
        self._runs = 0
        self._in_run = False
        self._paused = False
        # The fade-out (fade_out): (first frame of the ramp in the written stream, its gains), replaced whole
        # so the callback never pairs one fade's start with another's gains; None at full gain.
        self._fade: tuple[int, np.ndarray] | None = None
        self._fade_for: Any = None  # the marker payload the running fade started at (None: at a moment)
        self._fade_armed: tuple[Any, np.ndarray] | None = None  # (payload, gains): starts when that marker comes
        self._expecting_audio = False  # an underrun only counts while more audio is promised
        self._space = threading.Condition()
        self._closed = threading.Event()
        self._first_audio_time: float | None = None
        self._last_callback = time.monotonic()
        self._stream = self._open_stream()
        self.output_latency = self._plausible_latency(float(self._stream.latency))
        self._dispatcher = threading.Thread(target=self._dispatch_markers, name="audio-events", daemon=True)
        self._dispatcher.start()

    # --- setup ------------------------------------------------------------------------------------

    def _choose_device_rate(self, rate: int) -> int:
        """The source rate when the device takes it, else the first rate it does take.

        Many outputs play one rate only (WASAPI shared mode: the mixer's, often 48 kHz; JACK: the
        server's), and the default rate PortAudio reports is not always one of them, so each
        candidate is asked.
        """
        import sounddevice

        try:
            info = sounddevice.query_devices(self.device, "output")
        except Exception as error:  # no default output at all, or PortAudio broken
            raise AudioDeviceError(f"No audio output device is available: {error}") from error
        candidates = list(dict.fromkeys(c for c in (rate, int(info["default_samplerate"]), *COMMON_RATES) if c > 0))
        for candidate in candidates:
            try:
                sounddevice.check_output_settings(
                    device=self.device, samplerate=candidate, channels=1, dtype="float32"
                )
            except Exception:  # sounddevice raises PortAudioError or ValueError for a refused setting
                continue
            if candidate != rate:
                log.info("output device '%s' cannot play %d Hz; resampling to %d Hz", info["name"], rate, candidate)
            return candidate
        raise AudioDeviceError(
            f"The audio output '{info['name']}' accepts none of the sample rates "
            f"{', '.join(map(str, candidates))} Hz for mono float32 audio."
        )

    def _plausible_latency(self, reported: float) -> float:
        """The device's output latency, or the requested one where the report is impossible.

        PortAudio 19.6's JACK host reports a wrapped negative (about 89478 s at 48 kHz); believed,
        no position event would ever fire and no reading would ever finish.
        """
        if 0.0 <= reported <= MAX_PLAUSIBLE_LATENCY_S:
            return reported
        log.warning("the output reports a latency of %.3f s; assuming %.3f s", reported, self.latency_seconds)
        return self.latency_seconds

    def _open_stream(self):
        import sounddevice

        silence_alsa_messages()
        try:
            stream = sounddevice.OutputStream(
                samplerate=self.device_rate,
                device=self.device,
                channels=1,
                dtype="float32",
                latency=self.latency_seconds,
                callback=self._callback,
            )
            stream.start()
        except Exception as error:
            raise AudioDeviceError(f"Cannot open the audio output: {error}") from error
        log.info(
            "audio output opened: device %s at %d Hz, latency %.0f ms",
            self.device if self.device is not None else "default",
            self.device_rate,
            stream.latency * 1000,
        )
        return stream

    # --- PortAudio thread ---------------------------------------------------------------------------

    def _callback(self, outdata, frames, time_info, status) -> None:  # noqa: ARG002 - PortAudio signature
        self._last_callback = time.monotonic()
        channel = outdata[:, 0]
        if self._paused:
            channel.fill(0.0)
            self._frames_output += frames
            self._in_run = False
            return
        got = self._buffer.read_into(channel)
        if got:
            if self.volume != 1.0:
                channel[:got] *= self.volume
            fade = self._fade
            if fade is not None:
                self._apply_fade(channel, got, fade[0], fade[1])
            if not self._in_run:
                slot = self._runs % _RUN_SLOTS
                self._run_output_start[slot] = self._frames_output
                self._run_played_start[slot] = self.frames_played
                self._runs += 1
            self.frames_played += got
            self._audio_end_output = self._frames_output + got
        self._in_run = got == frames
        self._frames_output += frames
        if got < frames and self._expecting_audio:
            self.underruns += 1
        with self._space:
            self._space.notify_all()

    def _apply_fade(self, channel: np.ndarray, got: int, start: int, gains: np.ndarray) -> None:
        """Scale the `got` samples just read (written-stream frames from `frames_played` on) by the ramp that
        starts at frame `start`; silence past its end. In place, on slices: no allocation."""
        first = start - self.frames_played  # where in `channel` the ramp begins (negative: it began earlier)
        begin = max(first, 0)
        if begin >= got:
            return
        into_ramp = begin - first
        count = min(got - begin, max(len(gains) - into_ramp, 0))
        if count:
            channel[begin : begin + count] *= gains[into_ramp : into_ramp + count]
        channel[begin + count : got] = 0.0

    # --- writer side --------------------------------------------------------------------------------

    @property
    def audible_frame(self) -> int:
        """The frame of the written stream that is reaching the speakers about now."""
        heard_output = self._frames_output - int(self.output_latency * self.device_rate)
        played = self.frames_played
        runs = self._runs
        # Walk back from the newest run to the one that contains the output position now heard.
        for newer in range(runs - 1, max(-1, runs - _RUN_SLOTS - 1), -1):
            slot = newer % _RUN_SLOTS
            if self._run_output_start[slot] <= heard_output:
                return int(min(self._run_played_start[slot] + heard_output - self._run_output_start[slot], played))
            played = int(self._run_played_start[slot])
        return played

    def check_device(self) -> None:
        """Raise AudioDeviceError when the output stopped or has not asked for audio in a while."""
        stalled = time.monotonic() - self._last_callback > DEVICE_STALL_S
        if stalled or not self._stream.active:
            raise AudioDeviceError("The audio output device stopped responding (was it unplugged?).")

    def end_of_audio(self) -> None:
        """No more audio is coming for now (end of a reading, pause): an empty buffer is no underrun.

        Writing audio re-arms the underrun counter, so the wait for the very first sample of a
        reading is never counted.
        """
        self._expecting_audio = False

    def set_marker_handler(self, handler: Callable[[Any], None] | None) -> None:
        self._on_marker = handler

    def add_marker(self, payload: Any) -> None:
        """Fire `on_marker(payload)` when what is written from now on becomes audible."""
        with self._markers_lock:
            self._markers.append(Marker(self._frames_written, payload))
            armed = self._fade_armed
            if armed is not None and armed[0] == payload:
                self._fade, self._fade_for, self._fade_armed = (self._frames_written, armed[1]), payload, None

    def fade_out(self, seconds: float, at_marker: Any = None) -> None:
        """Ramp the output down to silence over `seconds` of audio, then play silence until a new reading
        (resume()) or flush(); the volume still applies.

        The ramp starts with the next sample the device takes or, with `at_marker`, at the marker with that
        payload, queued already or added later (where a sentence ends, say). It follows the audio: paused time
        and an underrun do not shorten it. Asking again for the fade already under way changes nothing.
        """
        frames = max(1, int(seconds * self.device_rate))
        gains = (FADE_FLOOR ** (np.arange(frames) / frames)).astype(np.float32)
        with self._markers_lock:
            if at_marker is None:
                self._fade, self._fade_for, self._fade_armed = (self.frames_played, gains), None, None
                return
            if self._fade_for == at_marker or (self._fade_armed is not None and self._fade_armed[0] == at_marker):
                return
            queued = next((marker for marker in self._markers if marker.payload == at_marker), None)
            if queued is None:
                self._fade_armed = (at_marker, gains)
            else:
                self._fade, self._fade_for, self._fade_armed = (queued.frame, gains), at_marker, None

    def cancel_fade(self) -> None:
        """Back to full gain; a fade waiting for its marker is dropped too."""
        with self._markers_lock:
            self._fade, self._fade_for, self._fade_armed = None, None, None

    @property
    def fade_state(self) -> Fade:
        """SILENT once the ramp's last sample has reached the speakers (audible_frame), not when it was handed
        to PortAudio: a reading stopped then cuts nothing audible."""
        if self._fade_armed is not None:
            return Fade.ARMED
        fade = self._fade
        if fade is None:
            return Fade.NONE
        start, gains = fade
        return Fade.SILENT if self.audible_frame >= start + len(gains) else Fade.FADING

    def write(self, samples: np.ndarray, cancel: threading.Event | None = None) -> bool:
        """Queue source-rate samples, waiting for room; False if cancelled or closed first."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self._resampler is not None:
            samples = self._resampler.process(samples)
        return self._queue(samples, cancel, more_coming=True)

    def _queue(self, samples: np.ndarray, cancel: threading.Event | None, more_coming: bool) -> bool:
        """Hand device-rate samples to the ring buffer, waiting for room; False if cancelled or closed."""
        offset = 0
        while offset < len(samples):
            # The cancel check and the write are one step for flush(): a stop sets the event and then
            # flushes, so a write that passed its check before the stop lands before the flush.
            with self._queue_lock:
                if self._closed.is_set() or (cancel is not None and cancel.is_set()):
                    return False
                self.check_device()
                taken = self._buffer.write(samples[offset:])
                offset += taken
                self._frames_written += taken
                if more_coming:
                    self._expecting_audio = True
                if taken and self._first_audio_time is None and np.any(samples[offset - taken : offset]):
                    self._first_audio_time = time.perf_counter()
            if offset < len(samples):
                with self._space:
                    self._space.wait(0.05)
        return True

    def finish_stream(self, cancel: threading.Event | None = None) -> bool:
        """Queue what the resampler holds back (its look-ahead, a few ms); after the last write of a reading.

        Waits for room like a write (a full buffer must not drop the tail) and leaves the underrun
        counter as end_of_audio set it: this is the end, not more audio.
        """
        if self._resampler is None:
            return True
        tail = self._resampler.flush()
        self._resampler = StreamResampler(self.source_rate, self.device_rate)
        return self._queue(tail, cancel, more_coming=False)

    @property
    def buffered_seconds(self) -> float:
        """Audio queued and not yet handed to PortAudio (the reader times its decoding by it)."""
        return len(self._buffer) / self.device_rate

    @property
    def first_audio_time(self) -> float | None:
        """perf_counter() when the first non-silent sample was handed to PortAudio's buffer."""
        return self._first_audio_time

    def wait_until_played(self, cancel: threading.Event | None = None, timeout: float | None = None) -> bool:
        """Wait until everything written has been heard (output latency included).

        Called after the last write of a reading, so it first queues the resampler's tail.
        """
        if not self.finish_stream(cancel):
            return False
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.audible_frame < self._frames_written or len(self._buffer):
            if cancel is not None and cancel.is_set():
                return False
            if deadline is not None and time.monotonic() > deadline:
                return False
            self.check_device()
            time.sleep(0.01)
        self._fire_due_markers(through=self._frames_written)  # events for the end precede "finished"
        return True

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        """Play on (also at the start of every reading), at full gain: a fade-out ends here."""
        self.cancel_fade()
        self._paused = False

    @property
    def paused(self) -> bool:
        return self._paused

    def flush(self) -> None:
        """Drop everything queued (stop, skip): markers for dropped audio are dropped too, and a fade-out
        with them (what plays next is at full gain)."""
        with self._queue_lock:
            self._buffer.clear()
            with self._markers_lock:
                self._markers.clear()
                self._fade, self._fade_for, self._fade_armed = None, None, None
            self._frames_written = self.frames_played
            self._expecting_audio = False
            if self._resampler is not None:
                self._resampler = StreamResampler(self.source_rate, self.device_rate)
        with self._space:
            self._space.notify_all()

    def reset_first_audio(self) -> None:
        self._first_audio_time = None

    def close(self) -> None:
        self._let_the_tail_play()
        self._closed.set()
        with self._space:
            self._space.notify_all()
        # A vanished device can make PortAudio's close block forever: never let that hang the app.
        closer = threading.Thread(target=self._close_stream, name="audio-close", daemon=True)
        closer.start()
        closer.join(timeout=2.0)
        if closer.is_alive():
            log.warning("the audio device did not close in time; leaving it behind")

    def _let_the_tail_play(self) -> None:
        """Keep the stream running until the last audio has left the device, so closing cuts nothing.

        Closing aborts whatever is still in flight, and at the end of `miodesk read` that was the
        last word's end (50 ms through JACK). Audio still queued here (closed mid-reading), a pause
        or a stopped device close at once; the wait is bounded in wall time too.
        """
        if self._paused or len(self._buffer) or not self._stream.active:
            return
        in_flight = self.output_latency + TAIL_GRACE_S
        end = self._audio_end_output + int(in_flight * self.device_rate)
        deadline = time.monotonic() + in_flight + 0.5
        while self._frames_output < end and time.monotonic() < deadline and self._stream.active:
            time.sleep(0.01)

    def _close_stream(self) -> None:
        try:
            self._stream.abort()
            self._stream.close()
        except Exception as error:  # a vanished device may fail to close; nothing left to do
            log.info("closing the audio stream failed: %s", error)

    def _fire_due_markers(self, through: int | None = None) -> None:
        """Fire markers whose first frame has been heard (or every marker up to `through`)."""
        # One lock around pop + call keeps events in order when two threads fire them.
        with self._dispatch_lock:
            due = []
            with self._markers_lock:
                audible = self.audible_frame
                while self._markers and (
                    self._markers[0].frame < audible or (through is not None and self._markers[0].frame <= through)
                ):
                    due.append(self._markers.popleft().payload)
            for payload in due:
                if self._on_marker is not None:
                    try:
                        self._on_marker(payload)
                    except Exception:
                        log.exception("position event handler failed")

    def _dispatch_markers(self) -> None:
        while not self._closed.wait(0.01):
            self._fire_due_markers()
