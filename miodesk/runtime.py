"""Runtime policy, decided in one place: where the ONNX graphs run and how many threads each model gets.

`Provider` is the user's compute choice (the CLI's `--provider`, the settings' "provider");
`ThreadPlan` gives every model its thread count, from this machine's cores and the user's overrides;
`open_session` opens every onnxruntime session MioDesk runs (codec decoder, voice encoder, doctor's probe)
with the same options and the same GPU → CPU fallback. Components (MioLLM, CodecRuntime, VoiceEncoder)
take the numbers they are given and decide none themselves.

No Qt and no model runtime at module level: onnxruntime is imported when a session is opened.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any

from miodesk import system
from miodesk.errors import MioDeskError, ModelError

log = logging.getLogger(__name__)


class Provider(str, Enum):
    """Where the ONNX graphs run (and whether llama.cpp may offload to the GPU: not under CPU).
    The values are the spellings of `--provider` and of the settings file."""

    AUTO = "auto"  # every GPU provider this onnxruntime build has, then the CPU
    CUDA = "cuda"
    DIRECTML = "directml"
    CPU = "cpu"

    # Printed, formatted and written to JSON as the plain spelling ("cpu", not "Provider.CPU").
    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @classmethod
    def parse(cls, choice: Provider | str) -> Provider:
        """The provider a user's spelling names (any case, surrounding spaces ignored); MioDeskError
        for an unknown name."""
        if isinstance(choice, Provider):
            return choice
        try:
            return cls(str(choice).lower().strip())
        except ValueError:
            *others, last = cls.choices()
            raise MioDeskError(f"Unknown provider {choice!r}; use {', '.join(others)} or {last}.") from None

    @classmethod
    def choices(cls) -> tuple[str, ...]:
        """The spellings, for argparse `choices=` and settings validation."""
        return tuple(provider.value for provider in cls)


# onnxruntime's names for the providers that run a graph; AUTO tries the GPU ones in this order.
_EXECUTION_PROVIDERS = {
    Provider.CUDA: "CUDAExecutionProvider",
    Provider.DIRECTML: "DmlExecutionProvider",
    Provider.CPU: "CPUExecutionProvider",
}
_GPU_ORDER = (Provider.CUDA, Provider.DIRECTML)


def available_providers() -> set[Provider]:
    """The providers this onnxruntime build has (whether their GPU and libraries are there is only known
    when a session opens); the CPU always, also when onnxruntime itself is broken."""
    try:
        import onnxruntime

        found = set(onnxruntime.get_available_providers())
    except Exception:  # noqa: BLE001 - a broken install: the settings still offer the CPU
        return {Provider.CPU}
    return {Provider.CPU} | {provider for provider, name in _EXECUTION_PROVIDERS.items() if name in found}


# --- threads --------------------------------------------------------------------------------------


MAX_LLM_THREADS = 4  # llama.cpp's decoding is memory-bound: more threads than this gain little


@dataclass(frozen=True)
class ThreadPlan:
    """Threads of every model, decided once from the cores this process may use.

    A reading is pipelined: the LLM generates utterance n+1 while the codec decodes utterance n, so the
    two share the cores. LLM decoding is memory-bound and gains little past a few threads; the codec
    runs in bursts and takes the rest. A single utterance (`miodesk speak`) runs the LLM, then the
    codec: each may use every core. Prompt prefill is compute-bound and short, so it always gets every
    core (1.75x faster first audio on 2 cores, measured with `miodesk bench`).
    """

    llm_threads: int
    llm_batch_threads: int
    codec_threads: int
    encoder_threads: int
    usable_cores: int  # what the plan was decided for; overrides are clamped to it
    llm_threads_chosen: bool = False  # the user's number (settings, command line), not the automatic one

    @property
    def lendable_codec_threads(self) -> int:
        """Codec threads the LLM may borrow between tokens while the codec waits for codes
        (`miodesk.tts.generation.CoreLoan`): in a pipelined plan whose LLM could use more threads, unless
        the user chose the LLM's number."""
        if self.llm_threads_chosen:
            return 0
        return max(0, min(self.codec_threads, self.usable_cores - self.llm_threads, MAX_LLM_THREADS - self.llm_threads))

    @classmethod
    def decide(
        cls,
        *,
        pipelined: bool,
        llm_threads: int | None = None,
        codec_threads: int | None = None,
        encoder_threads: int | None = None,
        usable_cores: int | None = None,
        physical_cores: int | None = None,
    ) -> ThreadPlan:
        """The plan for this machine (or for the core counts given, in tests). An override of None or 0
        means automatic; others are clamped to the usable cores, with a warning when out of range."""
        usable = max(1, usable_cores if usable_cores is not None else system.usable_cores())
        physical = max(1, physical_cores if physical_cores is not None else system.physical_cores())
        if pipelined:
            automatic_llm = max(1, min(MAX_LLM_THREADS, usable // 2))
            automatic_codec = max(1, usable - automatic_llm)
        else:
            automatic_llm = min(usable, MAX_LLM_THREADS)
            automatic_codec = usable
        # Making a voice runs beside the window (and maybe a reading): half the physical cores, and
        # never more than this process may use.
        automatic_encoder = max(1, min(usable, physical // 2))
        plan = cls(
            llm_threads=automatic_llm,
            llm_batch_threads=usable,
            codec_threads=automatic_codec,
            encoder_threads=automatic_encoder,
            usable_cores=usable,
        )
        return plan.with_overrides(
            llm_threads=llm_threads, codec_threads=codec_threads, encoder_threads=encoder_threads
        )

    @classmethod
    def for_reading(cls, *, llm_threads: int | None = None, codec_threads: int | None = None,
                    encoder_threads: int | None = None, usable_cores: int | None = None,
                    physical_cores: int | None = None) -> ThreadPlan:
        """A pipelined reading (the window, `miodesk read`, the benchmark's end-to-end runs)."""
        return cls.decide(pipelined=True, llm_threads=llm_threads, codec_threads=codec_threads,
                          encoder_threads=encoder_threads, usable_cores=usable_cores, physical_cores=physical_cores)

    @classmethod
    def for_single_utterance(cls, *, llm_threads: int | None = None, codec_threads: int | None = None,
                             encoder_threads: int | None = None, usable_cores: int | None = None,
                             physical_cores: int | None = None) -> ThreadPlan:
        """One text at a time, the LLM, then the codec (`miodesk speak`, `miodesk codec decode`)."""
        return cls.decide(pipelined=False, llm_threads=llm_threads, codec_threads=codec_threads,
                          encoder_threads=encoder_threads, usable_cores=usable_cores, physical_cores=physical_cores)

    def with_overrides(
        self,
        *,
        llm_threads: int | None = None,
        codec_threads: int | None = None,
        encoder_threads: int | None = None,
    ) -> ThreadPlan:
        """This plan with the user's numbers (settings or command line) where given, each clamped to
        1..usable cores: a thread pool of 99999 would never finish starting."""
        return replace(
            self,
            llm_threads_chosen=self.llm_threads_chosen or bool(llm_threads and llm_threads > 0),
            llm_threads=self._clamped("llm_threads", llm_threads, self.llm_threads),
            codec_threads=self._clamped("codec_threads", codec_threads, self.codec_threads),
            encoder_threads=self._clamped("encoder_threads", encoder_threads, self.encoder_threads),
        )

    def _clamped(self, name: str, requested: int | None, automatic: int) -> int:
        if requested is None or requested == 0:
            return automatic
        if requested < 0:
            log.warning("%s = %d is not a thread count; using the automatic %d.", name, requested, automatic)
            return automatic
        if requested > self.usable_cores:
            log.warning("%s = %d is more than the %d cores this process may use; using %d.",
                        name, requested, self.usable_cores, self.usable_cores)
            return self.usable_cores
        return requested


# --- onnxruntime sessions -------------------------------------------------------------------------


def gpu_candidates(provider: Provider | str, available: list[str]) -> list[Provider]:
    """The GPU providers to try, in order, before the CPU: under AUTO every GPU provider this
    onnxruntime build has (CUDA, then DirectML); MioDeskError for an unknown name."""
    choice = Provider.parse(provider)
    if choice is Provider.AUTO:
        return [name for name in _GPU_ORDER if _EXECUTION_PROVIDERS[name] in available]
    return [] if choice is Provider.CPU else [choice]


def _session_options(ort: Any, threads: int) -> Any:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # A desktop app shares the CPU with the LLM and the UI: no busy-waiting worker threads.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    so.log_severity_level = 3
    return so


OPTIMIZED_GRAPH = "graph.onnx"
# The optimised graph's weights, in a file of their own beside it: onnxruntime maps that file at load
# instead of parsing and copying 330 MB out of the graph (a third of the codec's load time).
OPTIMIZED_WEIGHTS = "weights.bin"
ABANDONED_BUILD_S = 3600.0  # a half-made optimised graph this old was left by a process that ended


def optimized_graph_path(graph: Path) -> Path:
    """Where the CPU session of `graph` keeps its optimised graph: a folder in the cache's graph folder
    holding the graph and its weights, named for the graph file (its place, size and time), this
    onnxruntime and this processor (an optimised graph may use the CPU's own kernels and layouts, so it
    is only valid where it was made)."""
    import onnxruntime as ort

    from miodesk import paths

    digest = paths.source_key(graph, ort.__version__, system.cpu_model(), OPTIMIZED_WEIGHTS)
    return paths.onnx_cache_dir() / f"{graph.stem}.cpu-{digest}" / OPTIMIZED_GRAPH


def _forget_older_optimized(kept: Path) -> None:
    """Remove what the same graph's optimisation left for another key (an older onnxruntime, the graph
    rebuilt, the single-file form of earlier versions) and builds abandoned by a process that ended:
    each is as big as the graph itself. A build another process has under way is left alone."""
    import glob
    import shutil

    stem = kept.name.split(".cpu-", 1)[0]
    for older in kept.parent.glob(f"{glob.escape(stem)}.cpu-*"):
        try:
            if older == kept or (older.name.endswith(".partial")
                                 and time.time() - older.stat().st_mtime < ABANDONED_BUILD_S):
                continue
            if older.is_dir():
                shutil.rmtree(older, ignore_errors=True)  # in use by a running app on Windows: next time
            else:
                older.unlink(missing_ok=True)
        except OSError as error:
            log.info("cannot remove the old optimised graph %s: %s", older.name, error)


def _keep_optimized(built: Path, folder: Path) -> None:
    """Put the finished build folder `built` in the place of `folder`, whole or not at all: its files
    are on the disk first (a weights file of zeros after a power cut would load, and decode noise),
    then one rename makes them visible together. OSError when that cannot be done."""
    import shutil

    for part in built.iterdir():
        with part.open("r+b") as written:
            os.fsync(written.fileno())
    if folder.exists():  # one that failed to load: out of the way first
        aside = folder.with_name(f"{folder.name}.{os.getpid()}.damaged.partial")
        os.replace(folder, aside)
        shutil.rmtree(aside, ignore_errors=True)
    os.replace(built, folder)  # fails when another process has just put its own in place: that one stays


def _cpu_session(ort: Any, model_source: str | bytes, so: Any, threads: int, optimized: Path | None) -> Any:
    """The CPU session, from the optimised graph kept at `optimized` when there is one (its loading skips
    the graph optimisations and maps the weights), else optimising `model_source` and keeping the result
    there for next time. Without `optimized`, as onnxruntime does it."""
    import shutil

    cpu = ["CPUExecutionProvider"]
    if optimized is None:
        return ort.InferenceSession(model_source, so, providers=cpu)
    if optimized.is_file():
        ready = _session_options(ort, threads)
        ready.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            return ort.InferenceSession(str(optimized), ready, providers=cpu)
        except Exception as error:  # damaged, its weights missing, or from another build: made again below
            log.warning("the optimised graph %s cannot be used (%s); making it again", optimized.parent.name,
                        str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__)
    folder = optimized.parent
    built = folder.with_name(f"{folder.name}.{os.getpid()}.partial")
    try:
        shutil.rmtree(built, ignore_errors=True)
        built.mkdir(parents=True)
    except OSError as error:  # a read-only cache: optimise at every load
        log.info("cannot keep the optimised graph %s: %s", folder.name, error)
        return ort.InferenceSession(model_source, so, providers=cpu)
    building = _session_options(ort, threads)
    building.optimized_model_filepath = str(built / optimized.name)
    building.add_session_config_entry("session.optimized_model_external_initializers_file_name",
                                      OPTIMIZED_WEIGHTS)
    try:
        session = ort.InferenceSession(model_source, building, providers=cpu)
    except Exception as error:  # writing the optimised graph failed (a full disk), or the graph is bad
        log.info("cannot keep the optimised graph %s: %s", folder.name, str(error).strip()[:200])
        shutil.rmtree(built, ignore_errors=True)
        return ort.InferenceSession(model_source, so, providers=cpu)
    try:
        _keep_optimized(built, folder)
        _forget_older_optimized(folder)
    except OSError as error:  # a full disk or another process's copy in place: next time loads that one
        log.info("cannot keep the optimised graph %s: %s", folder.name, error)
        shutil.rmtree(built, ignore_errors=True)
    return session


def open_session(model: Path | str | bytes, provider: Provider | str, threads: int,
                 label: str, optimized: Path | None = None) -> tuple[Any, Provider, list[str]]:
    """(session, the provider it runs on, why each faster provider was not used): the first candidate
    of `provider` that really initialises, the CPU as the last resort.

    `model` is a graph file or the graph's bytes; `threads` the intra-op threads (from a ThreadPlan);
    `label` names the graph in errors ("decoder graph decoder.onnx"); `optimized` where a CPU session
    keeps its optimised graph (`optimized_graph_path`), None to optimise at every load. ModelError when
    not even the CPU can load it, MioDeskError for an unknown provider name.
    """
    import onnxruntime as ort

    if threads < 1:
        raise ValueError(f"an onnxruntime session needs at least one thread, not {threads}")
    choice = Provider.parse(provider)
    model_source = str(model) if isinstance(model, Path) else model
    so = _session_options(ort, int(threads))
    available = set(ort.get_available_providers())
    reasons: list[str] = []
    cpu_session = None
    for name in [*gpu_candidates(choice, list(available)), Provider.CPU]:
        if name is Provider.CPU and cpu_session is not None:
            return cpu_session, Provider.CPU, reasons
        ep = _EXECUTION_PROVIDERS[name]
        if ep not in available:
            reasons.append(f"{ep} is not in this onnxruntime build")
            continue
        providers = [ep] if name is Provider.CPU else [ep, "CPUExecutionProvider"]
        # DirectML refuses sessions with memory patterns or parallel execution; the CPU keeps both.
        so.enable_mem_pattern = name is not Provider.DIRECTML
        try:
            if name is not Provider.CPU:
                # onnxruntime prints multi-line errors to stderr when an EP's libraries are
                # missing; the caller's one log line says the same, so keep the terminal clean.
                ort.set_default_logger_severity(4)
            try:
                if name is Provider.CPU:
                    session = _cpu_session(ort, model_source, so, int(threads), optimized)
                else:
                    session = ort.InferenceSession(model_source, so, providers=providers)
            finally:
                if name is not Provider.CPU:
                    ort.set_default_logger_severity(2)  # onnxruntime's default (warnings)
        except Exception as exc:  # missing EP libraries, old drivers, a damaged graph
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if name is Provider.CPU:
                raise ModelError(f"Cannot load {label}: {first}") from None
            reasons.append(f"{ep} failed to start ({first[:200]})")
            continue
        if session.get_providers()[0] == ep:
            return session, name, reasons
        # onnxruntime quietly fell back to the CPU (e.g. CUDA libraries missing): keep that session
        reasons.append(f"{ep} could not be initialised (missing libraries or no device)")
        cpu_session = session
    raise ModelError(f"Cannot load {label}: no usable execution provider.")


def probe_provider(provider: Provider | str = Provider.AUTO) -> tuple[Provider, list[str]]:
    """Where a graph would run under `provider` on this machine, and why not faster: opens a session on
    a one-node graph, so the answer is what onnxruntime really does, not what it lists. For doctor."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime MioDesk supports
    _session, name, reasons = open_session(model.SerializeToString(), provider, 1, "probe graph")
    return name, reasons
