"""The `miodesk` command: the desktop app by default, and headless tools as subcommands."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from miodesk import __version__
from miodesk.bench_cli import add_bench_parser
from miodesk.errors import MioDeskError
from miodesk.models_cli import add_models_parser, run_models
from miodesk.readings_cli import add_dict_parser, add_readings_option, readings_for, run_dict
from miodesk.runtime import Provider
from miodesk.speech_server.options import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_QUEUE_SIZE, ENV_API_KEY
from miodesk.tts.llm_server_cli import add_server_options, server_config_from_args
from miodesk.tts.voice_cli import add_voices_parser, run_voices

if TYPE_CHECKING:
    from miodesk.export import ExportRequest
    from miodesk.text.formats.base import Document
    from miodesk.text.segment import Utterance
    from miodesk.tts.pauses import Pauses
    from miodesk.tts.voices import Voice

log = logging.getLogger("miodesk.cli")

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl+C
EXIT_TERMINATED = 143  # 128 + SIGTERM


def _add_compute_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--provider",
        choices=Provider.choices(),
        default=Provider.AUTO.value,
        help="where the codec runs (default: auto = CUDA, then DirectML, then CPU)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="miodesk",
        description="MioDesk reads text aloud offline with MioTTS and MioCodec. "
        "Without a command it opens the desktop app.",
        epilog="`miodesk FILE [FILE ...]` opens documents in the desktop app; when MioDesk is already "
        "running, its window takes them. (A file named like a command: write ./NAME.)",
    )
    parser.add_argument("--version", action="version", version=f"MioDesk {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show progress and details")
    entry = parser.add_mutually_exclusive_group()
    entry.add_argument(
        "--install-desktop-entry",
        action="store_true",
        help="Linux: add MioDesk to the applications menu and to `Open with` for documents (for pip/pipx "
        "installs; the installers do this themselves)",
    )
    entry.add_argument(
        "--uninstall-desktop-entry", action="store_true", help="remove what --install-desktop-entry added"
    )
    entry.add_argument("--read-selection", action="store_true",
                       help="read the text selected in any app aloud, in the running MioDesk (started in the tray if "
                       "none runs); pressed again while it reads, it stops. For your desktop's keyboard settings")
    entry.add_argument("--read-clipboard", action="store_true", help="the same with the clipboard")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    speak = commands.add_parser("speak", help="turn a sentence into an audio file")
    speak.add_argument("text", help='the text to say ("-" reads standard input)')
    speak.add_argument(
        "--voice",
        help="voice name (see `miodesk voices list`) or a voice file (.pt, .npy, .npz) for the whole text; "
        "default: the voice of the text's language, each sentence its own in mixed text (see --voice-ja)",
    )
    _add_language_voice_options(speak)
    speak.add_argument("-o", "--output", required=True, type=Path,
                       help="the audio file; its extension picks the format: .m4b .m4a .mp3 .opus .ogg .flac .wav "
                       ".npy")
    speak.add_argument("--speed", type=float, default=1.0, help="speaking rate, 0.5 to 2.0 (default 1.0)")
    speak.add_argument("--model", type=Path, help="MioTTS GGUF file (default: from the models folder)")
    speak.add_argument("--codec", type=Path, help="MioCodec folder (config.yaml + model.safetensors) or decoder .onnx")
    speak.add_argument("--seed", type=int, help="sampling seed, for repeatable output")
    _add_speaking_options(speak)

    read = commands.add_parser("read", help="read a document aloud, live (or render it with -o)")
    read.add_argument("file", help='the document (text, Markdown, HTML, EPUB, PDF, DOCX; "-" reads stdin)')
    read.add_argument("--voice", help="voice name or file for every sentence (default: each sentence the voice "
                      "of its language, see --voice-ja)")
    _add_language_voice_options(read)
    read.add_argument("--speed", type=float, default=1.0, help="speaking rate, 0.5 to 2.0 (default 1.0)")
    read.add_argument("--device", help="audio output device: a number or part of its name (see doctor)")
    read.add_argument("--volume", type=float, default=1.0, help="volume, 0.0 to 1.0 (default 1.0)")
    read.add_argument("--from-char", type=int, default=0, metavar="N", help="start at character offset N")
    read.add_argument("-o", "--output", type=Path,
                      help="render to a file instead of playing (.m4b .m4a .mp3 .opus .flac .wav), as `export` "
                      "does; run again after an interruption, it continues")
    read.add_argument("--stats", action="store_true", help="print timing, real-time factor and memory")
    read.add_argument("--full-decode", action="store_true", help="decode whole sentences (no streaming)")
    read.add_argument("--model", type=Path, help="MioTTS GGUF file (default: from the models folder)")
    read.add_argument("--codec", type=Path, help="MioCodec folder or decoder .onnx")
    read.add_argument("--seed", type=int, help="sampling seed, for repeatable output")
    read.add_argument("--restart", action="store_true",
                      help="with -o: throw away what an interrupted render of the same settings kept")
    _add_speaking_options(read)

    export = commands.add_parser(
        "export", help="make an audiobook: a document to an audio file with chapters (and subtitles)",
        description="Render a document to one audio file with chapter marks, title, author and cover, and "
        "optionally subtitles. Interrupted (Ctrl+C, a crash), the same command continues where it stopped.",
    )
    export.add_argument("file", help='the document (text, Markdown, HTML, EPUB, PDF, DOCX; "-" reads stdin)')
    export.add_argument("-o", "--output", required=True, type=Path,
                        help="the audio file; its extension picks the format: .m4b (audiobook), .m4a, .mp3, "
                        ".opus/.ogg, .flac, .wav")
    export.add_argument("--voice", help="voice name or file for every sentence (default: each sentence the voice "
                        "of its language, see --voice-ja)")
    _add_language_voice_options(export)
    export.add_argument("--dialogue-voice", metavar="NAME",
                        help="voice name or file for the text inside quotes: 「…」, 『…』, “…” and \"…\"")
    export.add_argument("--speed", type=float, default=1.0, help="speaking rate, 0.5 to 2.0 (default 1.0)")
    export.add_argument("--subtitles", type=Path, metavar="SUBS",
                        help="also write subtitles, one cue per sentence: .srt, .vtt or .lrc")
    export.add_argument("--from-char", type=int, default=0, metavar="N", help="start at character offset N")
    export.add_argument("--seed", type=int, help="sampling seed, for repeatable output")
    export.add_argument("--restart", action="store_true",
                        help="throw away what an interrupted export with the same settings kept, and start over")
    export.add_argument("--no-quality-guard", action="store_true",
                        help="keep every sentence as first generated (default: a sentence far too short or long "
                        "for its text, with a long silence or a loop inside, is generated again)")
    export.add_argument("--model", type=Path, help="MioTTS GGUF file (default: from the models folder)")
    export.add_argument("--codec", type=Path, help="MioCodec folder or decoder .onnx")
    _add_speaking_options(export)

    text = commands.add_parser("text", help="print the text MioDesk would read from a document")
    text.add_argument("file", help='the document ("-" reads stdin)')

    codec = commands.add_parser("codec", help="build or run the MioCodec decoder")
    codec_commands = codec.add_subparsers(dest="codec_command", metavar="ACTION", required=True)
    export = codec_commands.add_parser("export", help="build decoder.onnx from an official codec folder")
    export.add_argument("folder", type=Path, help="folder with config.yaml and model.safetensors")
    export.add_argument("-o", "--output", required=True, type=Path, help="where to write the .onnx graph")
    decode = codec_commands.add_parser("decode", help="decode codec tokens to audio")
    decode.add_argument("decoder", type=Path, help="decoder .onnx (or a codec folder)")
    decode.add_argument("--tokens", required=True, type=Path, help="int64 (T,) .npy of codes 0..12799")
    decode.add_argument("--voice", required=True, help="voice file (.npy float32 (128,), .npz, .pt) or name")
    decode.add_argument("-o", "--output", required=True, type=Path, help="out.wav, out.flac or out.npy")
    decode.add_argument("--speed", type=float, default=1.0, help="time-stretch, 0.5 to 2.0 (default 1.0)")
    _add_compute_options(decode)

    serve = commands.add_parser(
        "serve", help="serve the voices to other apps: the OpenAI and VOICEVOX speech APIs over HTTP",
        description="Run MioDesk's speech server in the foreground until Ctrl+C: OpenAI's POST /v1/audio/speech "
        "(Open WebUI, SillyTavern …) and the VOICEVOX engine API (/speakers, /audio_query, /synthesis).",
    )
    serve.add_argument("--host", default=DEFAULT_HOST,
                       help=f"address to listen on (default {DEFAULT_HOST}: this computer only; any other, "
                       "e.g. 0.0.0.0, needs --api-key)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})")
    serve.add_argument("--api-key", metavar="KEY",
                       help=f"clients must send 'Authorization: Bearer KEY' (default: ${ENV_API_KEY}; "
                       "the environment keeps it out of the process list)")
    serve.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                       help="let web pages from ORIGIN (e.g. http://localhost:3000) call the server from a "
                       "browser; repeat for more (default: none)")
    serve.add_argument("--queue", type=int, default=DEFAULT_QUEUE_SIZE, metavar="N",
                       help="requests accepted at once, the one being spoken included; more get 503 "
                       f"(default {DEFAULT_QUEUE_SIZE})")
    serve.add_argument("--model", type=Path, help="MioTTS GGUF file (default: from the models folder)")
    serve.add_argument("--codec", type=Path, help="MioCodec folder or decoder .onnx")
    _add_compute_options(serve)
    add_server_options(serve)
    add_readings_option(serve)

    add_voices_parser(commands)
    add_models_parser(commands)
    add_dict_parser(commands)
    add_bench_parser(commands)

    doctor = commands.add_parser(
        "doctor", help="print versions, compute providers, audio devices, model folders and the speech server"
    )
    add_server_options(doctor)
    return parser


def _add_language_voice_options(parser: argparse.ArgumentParser) -> None:
    for option, language, preset in (("--voice-ja", "Japanese", "jp_female"), ("--voice-en", "English", "en_female")):
        parser.add_argument(option, metavar="NAME",
                            help=f"voice name or file for {language} sentences (default: the one chosen in the "
                            f"window's Settings > Voices, else {preset}, else any installed voice)")


def _read_text_argument(text: str) -> str:
    if text == "-":
        return sys.stdin.read()
    return text


def _voices_by_language(args: argparse.Namespace, utterances: list[Utterance],
                        main: str) -> tuple[Voice, dict[str, Voice]]:
    """The voices of `speak`/`read`: (the voice of `main` and of sentences of no language, {language: voice}).

    --voice reads everything ({} per language). Otherwise each of Japanese and English sentences gets
    --voice-ja/--voice-en, else the voice chosen in the window (Settings › Voices), else its official
    female preset, else any installed voice; only the languages the text has are looked up.
    """
    from miodesk.reading_state import VOICE_LANGUAGES, choose_voice, default_voice_for_language
    from miodesk.settings import load_settings
    from miodesk.tts.voices import VoiceStore, resolve_voice

    if args.voice:
        if args.voice_ja or args.voice_en:
            raise MioDeskError("Give either --voice (one voice for everything) or --voice-ja/--voice-en, not both.")
        return resolve_voice(args.voice), {}
    settings = load_settings(set_aside_damaged=False)
    store = VoiceStore()
    installed = store.names()
    languages = {u.language for u in utterances if u.language in VOICE_LANGUAGES} | {main}
    voices: dict[str, Voice] = {}
    for language in sorted(languages):
        name = (getattr(args, f"voice_{language}") or choose_voice(settings.language_voice(language), installed,
                                                                   language) or default_voice_for_language(language))
        voices[language] = resolve_voice(name, store)
    return voices[main], voices


def _llm_server(args: argparse.Namespace):
    """The speech server of `speak`/`read` (options, then environment), or None for the local model."""
    server = server_config_from_args(args)
    if server is not None and args.model is not None:
        raise MioDeskError("Give either --model (a local file) or --llm-base-url (a server), not both.")
    return server


def run_speak(args: argparse.Namespace) -> int:
    from miodesk.audio.files import check_output_path, write_audio
    from miodesk.reading_state import main_language
    from miodesk.runtime import ThreadPlan
    from miodesk.text.segment import segment
    from miodesk.tts.engine import SpeechEngine

    text = _read_text_argument(args.text)
    output = check_output_path(args.output)
    server = _llm_server(args)
    sentences = segment(text)
    voice, voices = _voices_by_language(args, sentences, main_language(sentences))
    engine = SpeechEngine(model_path=args.model, codec_path=args.codec, provider=args.provider,
                          thread_plan=ThreadPlan.for_single_utterance(),  # the LLM, then the codec
                          llm_server=server)
    prepare_text = readings_for(args).prepare_text
    result = engine.synthesize_long(text, voice, speed=args.speed, seed=args.seed, pauses=pauses_for(args),
                                    prepare_text=prepare_text, voices=voices)
    write_audio(output, result.samples, result.sample_rate)
    print(
        f"{output}: {result.seconds:.2f} s at {result.sample_rate} Hz, {len(result.codes)} codes "
        f"(LLM {result.timings['tokens_per_s']:.0f} tokens/s, codec {result.timings['codec_s']:.2f} s)"
    )
    return 0


def _load_reading_text(argument: str):
    from miodesk.text.documents import load_document, load_stream

    if argument == "-":
        # Bytes, checked and decoded like a file's: a binary stream is refused, any encoding is read.
        return load_stream(getattr(sys.stdin, "buffer", None))
    return load_document(Path(argument))


def _add_speaking_options(parser: argparse.ArgumentParser) -> None:
    """What every command that makes speech from text takes: compute, the speech server, the readings
    dictionary and the pauses (speak, read, export)."""
    _add_compute_options(parser)
    add_server_options(parser)
    add_readings_option(parser)
    _add_pause_options(parser)


def _add_pause_options(parser: argparse.ArgumentParser) -> None:
    from miodesk.tts.pauses import MAX_PARAGRAPH_PAUSE_S, MAX_SENTENCE_PAUSE_S

    parser.add_argument("--sentence-pause", type=float, metavar="S",
                        help=f"seconds of silence between sentences, 0 to {MAX_SENTENCE_PAUSE_S:g} (default: as set in "
                        "the window's Settings, else 0.25)")
    parser.add_argument("--paragraph-pause", type=float, metavar="S",
                        help=f"seconds between paragraphs, 0 to {MAX_PARAGRAPH_PAUSE_S:g} (default: as in Settings, "
                        "else 0.6); after a heading the pause is half again as long")


def pauses_for(args: argparse.Namespace) -> Pauses:
    """The pauses of `speak`/`read`/`export`: the options, else the window's Settings."""
    from miodesk.settings import load_settings
    from miodesk.tts.pauses import MAX_PARAGRAPH_PAUSE_S, MAX_SENTENCE_PAUSE_S, Pauses

    settings = load_settings(set_aside_damaged=False)
    chosen = {"sentence": settings.sentence_pause_s, "paragraph": settings.paragraph_pause_s}
    for name, longest in (("sentence", MAX_SENTENCE_PAUSE_S), ("paragraph", MAX_PARAGRAPH_PAUSE_S)):
        value = getattr(args, f"{name}_pause", None)
        if value is None:
            continue
        if not 0.0 <= value <= longest:  # also refuses nan
            raise MioDeskError(f"--{name}-pause must be from 0 to {longest:g} seconds, not {value:g}.")
        chosen[name] = value
    return Pauses.clamped(chosen["sentence"], chosen["paragraph"])


def _check_speed(speed: float) -> None:
    from miodesk.tts.codec import MAX_SPEED, MIN_SPEED

    if not MIN_SPEED <= speed <= MAX_SPEED:  # also refuses nan
        raise MioDeskError(f"--speed must be from {MIN_SPEED} to {MAX_SPEED}, not {speed}.")


def _document_to_read(args: argparse.Namespace, split_quotes: bool = False) -> tuple[Document, list[Utterance]]:
    """The document of `read`/`export` and its utterances, with --from-char checked against it."""
    from miodesk.text.segment import segment

    if args.from_char < 0:
        raise MioDeskError(f"--from-char must be 0 or more, not {args.from_char}.")
    document = _load_reading_text(args.file)
    utterances = segment(document.text, split_quotes=split_quotes)
    if not utterances:
        raise MioDeskError(f"'{args.file}' holds nothing that can be read aloud.")
    if args.from_char >= utterances[-1].end:
        source = "standard input" if args.file == "-" else f"'{args.file}'"
        raise MioDeskError(
            f"--from-char {args.from_char} is past the end of {source}, which has {len(document.text)} "
            f"characters; reading can start at 0 to {utterances[-1].end - 1}."
        )
    return document, utterances


def _reading_engine(args: argparse.Namespace, server, codec_in_background: bool = False):
    from miodesk.runtime import ThreadPlan
    from miodesk.tts.engine import SpeechEngine

    return SpeechEngine(model_path=args.model, codec_path=args.codec, provider=args.provider,
                        thread_plan=ThreadPlan.for_reading(),  # the LLM runs ahead while the codec decodes
                        llm_server=server, codec_in_background=codec_in_background)


def _export_request(args: argparse.Namespace, document: Document, utterances: list[Utterance],
                    dialogue: str | None = None) -> ExportRequest:
    """What `export` and `read -o` ask of the exporter, the voices resolved as `read` resolves them."""
    from miodesk.export import ExportRequest
    from miodesk.reading_state import main_language
    from miodesk.tts.voices import resolve_voice

    voice, voices = _voices_by_language(args, utterances, main_language(utterances))
    dialogue_voice = resolve_voice(dialogue) if dialogue else None
    names = [f"voice={voice.name}", *(f"{language}={each.name}" for language, each in sorted(voices.items()))]
    if dialogue_voice is not None:
        names.append(f"dialogue={dialogue_voice.name}")
    return ExportRequest(
        document, args.output, voice.vector, voices={language: each.vector for language, each in voices.items()},
        dialogue_voice=None if dialogue_voice is None else dialogue_voice.vector, voice_key=" ".join(names),
        speed=args.speed, pauses=pauses_for(args), subtitles=getattr(args, "subtitles", None),
        from_char=args.from_char, seed=args.seed,
        prepare_text=readings_for(args).prepare_text, restart=args.restart,
    )


def run_export_command(args: argparse.Namespace) -> int:
    from miodesk.export import ExportCancelled, check_export_paths, run_export
    from miodesk.export_cli import ProgressLine, stopped_message, summary_line

    check_export_paths(args.output, args.subtitles)  # before the document, the voices and the models
    _check_speed(args.speed)
    server = _llm_server(args)
    document, utterances = _document_to_read(args, split_quotes=args.dialogue_voice is not None)
    request = _export_request(args, document, utterances, args.dialogue_voice)
    request.quality_guard = not args.no_quality_guard
    engine = _reading_engine(args, server)
    line = ProgressLine(sys.stderr)
    try:
        result = run_export(engine, request, on_progress=line.update)
    except ExportCancelled as stopped:
        line.clear()
        print(f"\nmiodesk: {stopped_message(stopped)}", file=sys.stderr)
        return _interrupted_exit()
    finally:
        line.clear()
    for warning in [*document.warnings, *result.warnings]:
        print(f"miodesk: warning: {warning}", file=sys.stderr)
    print(summary_line(result, guard_on=request.quality_guard))
    return 0


def run_read(args: argparse.Namespace) -> int:
    from miodesk.reading_state import main_language

    if args.output is not None:
        return _render_reading(args)
    if not 0.0 <= args.volume <= 1.0:
        raise MioDeskError("--volume must be between 0.0 and 1.0.")
    server = _llm_server(args)
    document, utterances = _document_to_read(args)
    voice, voices = _voices_by_language(args, utterances, main_language(utterances))
    # The first sentence's codes are generated while the codec finishes loading: sooner to first sound.
    engine = _reading_engine(args, server, codec_in_background=True)
    try:
        return _play_reading(args, engine, document, utterances, voice, voices)
    finally:
        engine.wait_for_codec()


def _play_reading(args: argparse.Namespace, engine, document: Document, utterances: list[Utterance],
                  voice: Voice, voices: dict[str, Voice]) -> int:
    """`read` through the speakers: the sentences printed as they start, Ctrl+C stops with the place."""
    from miodesk.audio.player import AudioPlayer
    from miodesk.tts.reader import ReadingSession
    from miodesk.tts.streaming import ChunkPlan

    sink = AudioPlayer(engine.sample_rate, device=args.device, volume=args.volume)
    errors: list[str] = []
    show = _reading_printer(errors)
    session = ReadingSession(
        engine,
        utterances,
        voice.vector,
        sink,
        source_text=document.text,
        speed=args.speed,
        plan=ChunkPlan(full=args.full_decode),
        on_event=show,
        seed=args.seed,
        prepare_text=readings_for(args).prepare_text,
        voices={language: each.vector for language, each in voices.items()},
        pauses=pauses_for(args),
        headings=document.heading_spans(),
    )
    try:
        session.start_at_char(args.from_char)
        while not session.wait(0.1):
            pass
    except KeyboardInterrupt:
        session.stop()
        print(f"\nstopped; continue with --from-char {session.position}", file=sys.stderr)
        return _interrupted_exit()
    finally:
        session.stop()
        sink.close()
    if errors:
        raise MioDeskError(
            f"{errors[0]} (stopped at character {session.position}; continue with --from-char {session.position})"
        )
    if args.stats:
        import json

        print(json.dumps(session.stats.as_dict()))
    return 0


def _reading_printer(errors: list[str]):
    """The reading's events as `read` prints them: each sentence as it starts, warnings on stderr."""

    def show(event) -> None:
        if event.kind == "utterance_started":
            print(f"[{event.start}] {event.text}", flush=True)
        elif event.kind == "warning":
            print(f"miodesk: warning: {event.message} [{event.start}] {event.text}", file=sys.stderr, flush=True)
        elif event.kind == "error":
            errors.append(event.message)

    return show


def _render_reading(args: argparse.Namespace) -> int:
    """`read -o`: the reading rendered to a file by the exporter (chapters, tags, atomic, resumable), with
    the sentences printed as they are rendered. Unlike `export`: no quality guard (the same audio as
    reading live), and streamed windows unless --full-decode."""
    import json

    from miodesk.export import ExportCancelled, check_export_paths, run_export
    from miodesk.export_cli import stopped_message
    from miodesk.tts.reader import ReadingStats
    from miodesk.tts.streaming import ChunkPlan

    check_export_paths(args.output, None)  # before the document, the voices and the models
    _check_speed(args.speed)
    server = _llm_server(args)
    document, utterances = _document_to_read(args)
    request = _export_request(args, document, utterances)
    request.quality_guard = False
    request.plan = ChunkPlan(full=args.full_decode)
    engine = _reading_engine(args, server)
    try:
        result = run_export(engine, request, on_event=_reading_printer([]))
    except ExportCancelled as stopped:
        print(f"\n{stopped_message(stopped)}", file=sys.stderr)
        return _interrupted_exit()
    if args.stats:
        print(json.dumps((result.stats or ReadingStats()).as_dict()))
    print(f"{args.output}: {result.audio_s:.1f} s at {engine.sample_rate} Hz")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    # The HTTP stack loads only here: building the parser on every start imports none of it.
    from miodesk.runtime import ThreadPlan
    from miodesk.speech_server.app import ServerOptions, check_options, serve_forever
    from miodesk.speech_server.service import SpeechService
    from miodesk.tts.engine import SpeechEngine
    from miodesk.tts.voices import VoiceStore

    key = args.api_key if args.api_key is not None else os.environ.get(ENV_API_KEY, "")
    options = ServerOptions(host=args.host, port=args.port, api_key=key, cors_origins=tuple(args.cors_origin))
    check_options(options)  # an unsafe address is refused before any model loads
    if args.queue < 1:
        raise MioDeskError("--queue must be at least 1.")
    server = _llm_server(args)
    store = VoiceStore()
    if not store.names():
        print("miodesk: warning: no voices are installed, so every request will be refused; "
              "add one with `miodesk voices import FILE` or `miodesk models download jp_female`.",
              file=sys.stderr)
    print("Loading the speech model …", flush=True)
    engine = SpeechEngine(model_path=args.model, codec_path=args.codec, provider=args.provider,
                          thread_plan=ThreadPlan.for_reading(),  # a request is read like `miodesk read`
                          llm_server=server)
    service = SpeechService(lambda: engine, store, queue_size=args.queue,
                            prepare_text=readings_for(args).prepare_text)
    try:
        return serve_forever(service, options)
    finally:
        service.close()


def run_bench(args: argparse.Namespace) -> int:
    # Here, not in bench_cli (which miodesk.bench imports): the measurement code loads only when bench runs.
    from miodesk import bench

    return bench.run_bench(args)


def run_text(args: argparse.Namespace) -> int:
    from miodesk.text.documents import outline_text

    print(outline_text(_load_reading_text(args.file)))
    return 0


def run_codec_export(args: argparse.Namespace) -> int:
    from miodesk.tts.export.decoder import export_decoder

    if args.output.suffix.lower() != ".onnx":
        raise MioDeskError(f"Cannot write '{args.output.name}': the decoder file must end in .onnx.")
    out = export_decoder(args.folder, args.output)
    print(f"{out}: {out.stat().st_size / 1e6:.1f} MB")
    return 0


def _load_tokens(path: Path) -> np.ndarray:
    try:
        tokens = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise MioDeskError(f"Token file '{path}' does not exist.") from None
    except (ValueError, OSError) as error:
        raise MioDeskError(f"Cannot read '{path}' as a .npy array of tokens ({error}).") from None
    if tokens.ndim != 1 or not np.issubdtype(tokens.dtype, np.integer):
        raise MioDeskError(
            f"'{path.name}' holds a {tokens.dtype} array of shape {tokens.shape}; "
            "tokens must be integers of shape (T,)."
        )
    return tokens.astype(np.int64)


def run_codec_decode(args: argparse.Namespace) -> int:
    from miodesk.audio.files import check_output_path, write_audio
    from miodesk.runtime import ThreadPlan
    from miodesk.tts.codec import CodecRuntime, ensure_decoder
    from miodesk.tts.voices import resolve_voice

    output = check_output_path(args.output)
    tokens = _load_tokens(args.tokens)
    voice = resolve_voice(args.voice)
    threads = ThreadPlan.for_single_utterance().codec_threads
    codec = CodecRuntime(ensure_decoder(args.decoder), provider=args.provider, intra_op_threads=threads)
    samples = codec.decode(tokens, voice.vector, speed=args.speed)
    write_audio(output, samples, codec.sample_rate)
    print(f"{output}: {len(samples) / codec.sample_rate:.2f} s at {codec.sample_rate} Hz")
    return 0


def run_doctor(args: argparse.Namespace) -> int:
    from miodesk.doctor import doctor_report
    from miodesk.tts.llm_server import ServerError

    try:
        server, problem = server_config_from_args(args), ""
    except ServerError as error:  # doctor reports what is wrong instead of failing
        server, problem = None, str(error)
    print(doctor_report(server, problem))
    return 0


def run_desktop_entry(args: argparse.Namespace) -> int:
    from miodesk import desktop_entry

    if not desktop_entry.supported():
        print(
            "miodesk: the desktop entry is for Linux desktops; on Windows and macOS the MioDesk installer "
            "creates the shortcuts (Start menu, Applications folder).",
            file=sys.stderr,
        )
        return EXIT_ERROR
    if args.install_desktop_entry:
        report = desktop_entry.install()
        for path in report.written:
            print(f"wrote {path}")
        print("MioDesk is now in the applications menu and in `Open with` for documents.")
    else:
        report = desktop_entry.uninstall()
        for path in report.removed:
            print(f"removed {path}")
        if not report.removed:
            print(f"No MioDesk desktop entry in {desktop_entry.data_home()}; nothing to remove.")
    return 0


_terminated_by: list[int] = []  # the signal that stopped the command, when it was not Ctrl+C


def _stop_like_ctrl_c_on_sigterm() -> None:
    """SIGTERM (a service manager, `kill`, a closing terminal) and Ctrl+Break on Windows stop a command
    the way Ctrl+C does: the same cleanup runs (a render's temporary file is removed, an export keeps its
    finished chapters). `serve` puts its own handler in place while it runs."""

    def stop(number: int, _frame: object) -> None:
        _terminated_by.append(number)
        raise KeyboardInterrupt

    for name in ("SIGTERM", "SIGBREAK"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), stop)


def _interrupted_exit() -> int:
    return EXIT_TERMINATED if _terminated_by else EXIT_INTERRUPTED


def _command_names(parser: argparse.ArgumentParser) -> set[str]:
    return {name for action in parser._actions if isinstance(action, argparse._SubParsersAction)
            for name in action.choices}


def _looks_like_a_file(token: str) -> bool:
    return os.path.exists(token) or os.sep in token or "/" in token or bool(Path(token).suffix)


def _gui_files_requested(argv: list[str], commands: set[str]) -> bool:
    """`miodesk [-v] FILE...`: the first argument that is not an option is a document, not a command.

    Anything else (`miodesk spek`) is left to argparse, which names the commands it knows.
    """
    for index, token in enumerate(argv):
        if token == "--":
            return index + 1 < len(argv)
        if token.startswith("-") and token != "-":
            continue
        return token not in commands and _looks_like_a_file(token)
    return False


def _parse_gui_files(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="miodesk", usage="miodesk [-v] FILE [FILE ...]",
                                     description="Open documents in the MioDesk desktop app.")
    parser.add_argument("--version", action="version", version=f"MioDesk {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show progress and details")
    parser.add_argument("files", nargs="*", metavar="FILE", help="text, Markdown, HTML, EPUB, PDF or DOCX")
    # Everything after `--` is a file, even `-notes.txt` (parse_intermixed_args does not take `--`).
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_intermixed_args(argv[:split])
    args.files += argv[split + 1:]
    if not args.files:
        parser.error("no FILE given")
    return args


def _openable_files(files: list[str]) -> list[str] | None:
    """The files that exist; a warning line for each that does not (None, after one error line, if none do)."""
    problems = {}
    for name in files:
        if not os.path.exists(name):
            problems[name] = f"'{name}' does not exist"
        elif os.path.isdir(name):
            problems[name] = f"'{name}' is a folder, not a document"
    usable = [name for name in files if name not in problems]
    if not usable:
        print(f"miodesk: error: {'; '.join(problems.values())}.", file=sys.stderr)
        return None
    for problem in problems.values():
        print(f"miodesk: warning: {problem}; opening the other files.", file=sys.stderr)
    return usable


def _open_app(parser: argparse.ArgumentParser, verbose: bool, files: list[str], read: str = "") -> int:
    from miodesk.ui.app import has_display, run_app

    if read and not has_display():
        print(f"miodesk: error: --read-{read} needs a graphical session (none found).", file=sys.stderr)
        return EXIT_ERROR
    if not has_display():
        # A terminal without a graphical session: say what the command offers instead.
        parser.print_help()
        print("\nmiodesk: no graphical display found, so the desktop app cannot open here.", file=sys.stderr)
        if files:
            print(f"miodesk: to hear it in this terminal: miodesk read {shlex.quote(files[0])}", file=sys.stderr)
            return EXIT_ERROR
        return 0
    return run_app([*(["--verbose"] if verbose else []), *([f"--read-{read}"] if read else []), "--", *files])


def main(argv: list[str] | None = None) -> int:
    from miodesk.console import make_console_safe

    make_console_safe()  # device names, paths and sentences in any script, on any console
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if _gui_files_requested(argv, _command_names(parser)):
        gui_args = _parse_gui_files(argv)
        files = _openable_files(gui_args.files)
        if files is None:
            return EXIT_ERROR

        from miodesk.logs import setup_logging

        setup_logging(verbose=gui_args.verbose)
        return _open_app(parser, gui_args.verbose, files)
    args = parser.parse_args(argv)

    from miodesk.logs import setup_logging

    log_path = setup_logging(verbose=args.verbose)
    handlers = {
        "speak": run_speak,
        "read": run_read,
        "export": run_export_command,
        "text": run_text,
        "codec": lambda a: run_codec_export(a) if a.codec_command == "export" else run_codec_decode(a),
        "voices": run_voices,
        "models": run_models,
        "dict": run_dict,
        "bench": run_bench,
        "serve": run_serve,
        "doctor": run_doctor,
    }
    handler: Callable[[argparse.Namespace], int]
    if args.install_desktop_entry or args.uninstall_desktop_entry:
        command, handler = "desktop-entry", run_desktop_entry
    elif args.command is None:
        return _open_app(parser, args.verbose, [], "selection" if args.read_selection else
                         "clipboard" if args.read_clipboard else "")
    elif args.read_selection or args.read_clipboard:
        parser.error(f"--read-{'selection' if args.read_selection else 'clipboard'} takes no command")
    else:
        command, handler = args.command, handlers[args.command]
    _stop_like_ctrl_c_on_sigterm()
    try:
        return handler(args)
    except MioDeskError as error:
        log.info("user error: %s", error)
        print(f"miodesk: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("miodesk: interrupted", file=sys.stderr)
        return _interrupted_exit()
    except Exception as error:  # the user sees one line; the traceback goes to the log file
        log.exception("unexpected error in %s", command)
        print(
            f"miodesk: unexpected error: {type(error).__name__}: {error} (details in {log_path})",
            file=sys.stderr,
        )
        return EXIT_ERROR
