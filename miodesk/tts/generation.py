"""The code generator seam: text in, a stream of MioCodec codes (0..12799) out.

Everything that speaks (`miodesk speak`, `miodesk read`, the window) asks for codes only through
`CodeGenerator` and decides what a failed generation means only through `RetryPolicy`, so another
generator (an OpenAI-compatible LLM server instead of llama.cpp in this process) plugs in at one place.
`miodesk.tts.llm.MioLLM` is the in-process implementation.

One model may serve several threads (the window's reading and the local speech server): `MioLLM`
runs their generations one at a time through a `GenerationGate`, each with the `Priority` of the
thread that iterates it (`priority_of_thread`).
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Protocol

log = logging.getLogger(__name__)

RUNAWAY_REPEAT = 50  # the same code this many times in a row is a runaway
RUNAWAY_WINDOW, RUNAWAY_DISTINCT = 150, 4  # or this few distinct codes in the last window


class FinishReason(str, Enum):
    """Why a generation ended. A str, so it compares equal to the plain strings used before."""

    EOG = "eog"  # the model ended the utterance itself
    CAP = "cap"  # max_tokens reached or the context full: the model did not finish
    CANCELLED = "cancelled"  # the caller's cancel event, or the stream was closed early
    RUNAWAY = "runaway"  # stopped by the caller: the model was repeating itself


@dataclass
class SamplingParams:
    """Official MioTTS defaults (llama-server's defaults with top_p 1.0)."""

    temperature: float = 0.8
    top_p: float = 1.0
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    max_tokens: int = 700
    seed: int | None = None  # None: a different random draw each time


class CodeStream(Protocol):
    """One generation: iterate it for codes as they come; once exhausted, `finish_reason` says why."""

    @property
    def finish_reason(self) -> FinishReason | None: ...  # None while codes are still coming

    @property
    def prompt_seconds(self) -> float: ...  # time to read the prompt (prefill), for time-to-first-audio

    @property
    def tokens_per_second(self) -> float: ...

    def __iter__(self) -> Iterator[int]: ...

    def __next__(self) -> int: ...

    def close(self) -> None:
        """Stop early; `finish_reason` becomes CANCELLED unless the generation had already ended."""


class CodeGenerator(Protocol):
    """Turns one utterance's text, already normalised for the model (`text_for_model`), into codes.

    The stream checks `cancel` between tokens; a generator raises `miodesk.errors.GenerationError`
    (or `ModelError`) for failures that another seed cannot fix, such as a prompt too long.
    """

    def generate(
        self, text: str, params: SamplingParams | None = None, cancel: threading.Event | None = None
    ) -> CodeStream: ...


class Priority(IntEnum):
    """Who goes first when generations wait for one model (`GenerationGate`); lower goes first."""

    INTERACTIVE = 0  # someone is listening now: the window's reading, `speak`, `read`
    BACKGROUND = 1  # the local speech server's requests (miodesk.speech_server.service)


_thread_priority = threading.local()


def current_priority() -> Priority:
    """The priority of generations started on this thread (INTERACTIVE unless `priority_of_thread`)."""
    return getattr(_thread_priority, "value", Priority.INTERACTIVE)


@contextmanager
def priority_of_thread(priority: Priority) -> Iterator[None]:
    """Generations this thread waits for meanwhile wait with `priority` (a reading's LLM thread sets it)."""
    previous = current_priority()
    _thread_priority.value = priority
    try:
        yield
    finally:
        _thread_priority.value = previous


class CoreLoan:
    """The codec's cores, lent to the LLM while the codec waits for codes.

    A pipelined reading gives the LLM and the codec their own threads (on two cores, one each). The
    codec decodes in bursts and its core idles between them, while llama.cpp decodes faster on more
    threads. So the LLM takes `lent` more threads for each token that starts while no decode is running,
    and gives them back at the first token after one starts (a token takes a few milliseconds).
    Thread counts do not change llama.cpp's results: the same seed gives the same codes either way.
    """

    def __init__(self, own: int, lent: int) -> None:
        self.own, self.lent = own, lent
        self._decodes = 0  # decodes running now (several readings may share the codec)
        self._lock = threading.Lock()

    @contextmanager
    def decoding(self) -> Iterator[None]:
        """Around a codec decode: the LLM's next token runs on its own threads only."""
        with self._lock:
            self._decodes += 1
        try:
            yield
        finally:
            with self._lock:
                self._decodes -= 1

    def withdraw(self) -> None:
        """Lend nothing from now on (the codec turned out to run on a GPU: its threads are not spare)."""
        self.lent = 0

    def llm_threads(self) -> int:
        """Threads for the LLM's next token."""
        return self.own if self._decodes else self.own + self.lent

    def prompt_threads(self, all_threads: int) -> int:
        """Threads for reading a prompt, which otherwise takes `all_threads` (every core): its own only
        while a decode runs (or the codec loads), whose core a thread of it would wait for at every
        step, and keep that core from the codec meanwhile."""
        return self.own if self._decodes else all_threads


def codec_decoding(loan: CoreLoan | None) -> AbstractContextManager[None]:
    """Around a codec decode: the LLM hands back the codec's threads it borrows, if any (`CoreLoan`)."""
    return loan.decoding() if loan is not None else nullcontext()


GATE_POLL_S = 0.05  # how soon a waiting generation notices its cancel event


class GenerationGate:
    """One generation at a time on a model that can run only one (a llama.cpp context is not
    thread-safe): a generation holds the gate from its first code until it is exhausted or closed.

    Waiting generations go in order of priority, then of arrival: when the window's reading and the
    speech server both wait, the reading's next sentence goes first. Not re-entrant.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._held = False
        self._tickets = itertools.count()
        self._waiting: list[tuple[int, int]] = []  # a heap of (priority, ticket)

    def acquire(
        self, priority: Priority | None = None, cancel: threading.Event | None = None, timeout: float | None = None
    ) -> bool:
        """Wait for the gate (with this thread's priority when None); False when `cancel` was set or
        `timeout` passed first."""
        entry = (int(current_priority() if priority is None else priority), next(self._tickets))
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            heapq.heappush(self._waiting, entry)
            try:
                while self._held or self._waiting[0] != entry:
                    if cancel is not None and cancel.is_set():
                        return False
                    wait = GATE_POLL_S
                    if deadline is not None:
                        wait = min(wait, deadline - time.monotonic())
                        if wait <= 0:
                            return False
                    self._cond.wait(wait)
                self._held = True
                return True
            finally:
                self._waiting.remove(entry)
                heapq.heapify(self._waiting)
                self._cond.notify_all()

    def release(self) -> None:
        with self._cond:
            self._held = False
            self._cond.notify_all()

    @property
    def busy(self) -> bool:
        """A generation holds the gate."""
        return self._held

    def waiting(self, priority: Priority | None = None) -> int:
        """Generations waiting (of `priority` only, when given)."""
        with self._cond:
            return sum(1 for level, _ in self._waiting if priority is None or level == priority)


def is_runaway(codes: Sequence[int]) -> bool:
    """A generation stuck on one code, or cycling through a handful of them."""
    if len(codes) >= RUNAWAY_REPEAT and len(set(codes[-RUNAWAY_REPEAT:])) == 1:
        return True
    return len(codes) >= RUNAWAY_WINDOW and len(set(codes[-RUNAWAY_WINDOW:])) <= RUNAWAY_DISTINCT


@dataclass(frozen=True)
class RetryPolicy:
    """What counts as a failed generation, how often it is tried, and with which seed.

    Seeds: attempt `a` of utterance `i` of a text spoken with seed `s` uses `s + i * seed_stride + a`.
    The first attempt of the first utterance uses `s` itself, so a single sentence sounds as it always
    did with that seed; no two attempts of one reading share a seed while `attempts <= seed_stride`; and
    an utterance's seed depends on its place in the text only, so `speak` and `read` of the same text
    with the same seed give the same codes, and a reading started in the middle sounds as a whole one.
    """

    attempts: int = 2  # the first try and one retry; after that the caller gives up on the utterance
    seed_stride: int = 1000
    detect_runaways: bool = True  # off only for random-weight stand-ins (miodesk bench), which repeat codes

    def __post_init__(self) -> None:
        if not 1 <= self.attempts <= self.seed_stride:
            raise ValueError(f"attempts must be between 1 and {self.seed_stride}, not {self.attempts}")

    def seed(self, seed: int | None, index: int, attempt: int) -> int | None:
        return None if seed is None else seed + index * self.seed_stride + attempt

    def params(self, base: SamplingParams | None, seed: int | None, index: int, attempt: int) -> SamplingParams:
        """`base` (official defaults when None) with the seed of this attempt."""
        return dataclasses.replace(base or SamplingParams(), seed=self.seed(seed, index, attempt))

    def is_runaway(self, codes: Sequence[int]) -> bool:
        return self.detect_runaways and is_runaway(codes)

    @staticmethod
    def failed(reason: FinishReason | None, n_codes: int) -> bool:
        """Whether another seed may do better: the model did not end, repeated itself, or said nothing."""
        if reason in (FinishReason.CAP, FinishReason.RUNAWAY):
            return True
        return reason == FinishReason.EOG and n_codes == 0

    def retry(self, reason: FinishReason | None, n_codes: int, attempt: int) -> bool:
        """Whether attempt number `attempt` (from 0), which ended so, is followed by another one."""
        return self.failed(reason, n_codes) and attempt + 1 < self.attempts


def collect_codes(
    generator: CodeGenerator,
    text: str,
    params: SamplingParams,
    policy: RetryPolicy,
    cancel: threading.Event | None = None,
) -> tuple[list[int], FinishReason | None]:
    """All codes of one attempt and why it ended (RUNAWAY when `policy` stopped it)."""
    stream = generator.generate(text, params, cancel=cancel)
    codes: list[int] = []
    for code in stream:
        codes.append(code)
        if policy.is_runaway(codes):
            stream.close()
            return codes, FinishReason.RUNAWAY
    return codes, stream.finish_reason


def generate_with_retries(
    generator: CodeGenerator,
    text: str,
    policy: RetryPolicy,
    seed: int | None = None,
    index: int = 0,
    params: SamplingParams | None = None,
    cancel: threading.Event | None = None,
) -> tuple[list[int], FinishReason | None]:
    """The codes of utterance `index` of a text, tried as `policy` says; the last attempt's if all failed."""
    codes: list[int] = []
    reason: FinishReason | None = None
    for attempt in range(policy.attempts):
        codes, reason = collect_codes(generator, text, policy.params(params, seed, index, attempt), policy, cancel)
        if not policy.retry(reason, len(codes), attempt):
            break
        # Not a warning: a retry that works is no news, and one that fails becomes the caller's error.
        log.info("utterance %d: %s on attempt %d; trying another seed", index, describe_failure(reason), attempt + 1)
    return codes, reason


def describe_failure(reason: FinishReason | None) -> str:
    """Why a failed generation is not used, in words for a message."""
    if reason == FinishReason.CAP:
        return "no end within the token limit"
    if reason == FinishReason.RUNAWAY:
        return "repetition"
    return "no speech"


DEFAULT_RETRY = RetryPolicy()  # the policy of `speak`, `read` and the window
