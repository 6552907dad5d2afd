"""The `miodesk` command: the desktop app by default, and headless tools as subcommands."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from miodesk import __version__
from miodesk.bench_cli import add_bench_parser
from miodesk.errors import MioDeskError
from miodesk.models_cli import add_models_parser, run_models
from miodesk.runtime import Provider
from miodesk.speech_server.options import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_QUEUE_SIZE, ENV_API_KEY
from miodesk.tts.llm_server_cli import add_server_options, server_config_from_args
from miodesk.tts.voice_cli import add_voices_parser, run_voices

log = logging.getLogger("miodesk.cli")

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


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
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    speak = commands.add_parser("speak", help="turn a sentence into an audio file")
    speak.add_argument("text", help='the text to say ("-" reads standard input)')
    speak.add_argument(
        "--voice",
        help="voice name (see `miodesk voices list`) or a voice file (.pt, .npy, .npz); "
        "default: jp_female for Japanese text, en_female otherwise",
    )
    speak.add_argument("-o", "--output", required=True, type=Path, help="out.wav, out.flac or out.npy")
    speak.add_argument("--speed", type=float, default=1.0, help="speaking rate, 0.5 to 2.0 (default 1.0)")
    speak.add_argument("--model", type=Path, help="MioTTS GGUF file (default: from the models folder)")
    speak.add_argument("--codec", type=Path, help="MioCodec folder (config.yaml + model.safetensors) or decoder .onnx")
    speak.add_argument("--seed", type=int, help="sampling seed, for repeatable output")
    _add_compute_options(speak)
    add_server_options(speak)

    read = commands.add_parser("read", help="read a document aloud, live (or render it with -o)")
    read.add_argument("file", help='the document (text, Markdown, HTML, EPUB, PDF, DOCX; "-" reads stdin)')
    read.add_argument("--voice", help="voice name or file (default: by the text's language)")
    read.add_argument("--speed", type=float, default=1.0, help="speaking rate, 0.5 to 2.0 (default 1.0)")
    read.add_argument("--device", help="audio output device: a number or part of its name (see doctor)")
    read.add_argument("--volume", type=float, default=1.0, help="volume, 0.0 to 1.0 (default 1.0)")
    read.add_argument("--from-char", type=int, default=0, metavar="N", help="start at character offset N")
    read.add_argument("-o", "--output", type=Path, help="render to book.wav/.flac instead of playing")
    read.add_argument("--stats", action="store_true", help="print timing, real-time factor and memory")
    read.add_argument("--full-decode", action="store_true", help="decode whole sentences (no streaming)")
    read.add_argument("--model", type=Path, help="MioTTS GGUF file (default: from the models folder)")
    read.add_argument("--codec", type=Path, help="MioCodec folder or decoder .onnx")
    read.add_argument("--seed", type=int, help="sampling seed, for repeatable output")
    _add_compute_options(read)
    add_server_options(read)

    text = commands.add_parser("text", help="print the text MioDesk would read from a document")
    text.add_argument("file", type=Path)

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

    add_voices_parser(commands)
    add_models_parser(commands)
    add_bench_parser(commands)

    doctor = commands.add_parser(
        "doctor", help="print versions, compute providers, audio devices, model folders and the speech server"
    )
    add_server_options(doctor)
    return parser


def _read_text_argument(text: str) -> str:
    if text == "-":
        return sys.stdin.read()
    return text


def _default_voice_name(text: str) -> str:
    from miodesk.reading_state import default_voice_for_language
    from miodesk.text import detect_language

    return default_voice_for_language(detect_language(text))


def _llm_server(args: argparse.Namespace):
    """The speech server of `speak`/`read` (options, then environment), or None for the local model."""
    server = server_config_from_args(args)
    if server is not None and args.model is not None:
        raise MioDeskError("Give either --model (a local file) or --llm-base-url (a server), not both.")
    return server


def run_speak(args: argparse.Namespace) -> int:
    from miodesk.audio.files import check_output_path, write_audio
    from miodesk.runtime import ThreadPlan
    from miodesk.tts.engine import SpeechEngine
    from miodesk.tts.voices import resolve_voice

    text = _read_text_argument(args.text)
    output = check_output_path(args.output)
    server = _llm_server(args)
    voice = resolve_voice(args.voice or _default_voice_name(text))
    engine = SpeechEngine(model_path=args.model, codec_path=args.codec, provider=args.provider,
                          thread_plan=ThreadPlan.for_single_utterance(),  # the LLM, then the codec
                          llm_server=server)
    result = engine.synthesize_long(text, voice, speed=args.speed, seed=args.seed)
    write_audio(output, result.samples, result.sample_rate)
    print(
        f"{output}: {result.seconds:.2f} s at {result.sample_rate} Hz, {len(result.codes)} codes "
        f"(LLM {result.timings['tokens_per_s']:.0f} tokens/s, codec {result.timings['codec_s']:.2f} s)"
    )
    return 0


def _load_reading_text(argument: str):
    from miodesk.text.documents import document_from_text, load_document

    if argument == "-":
        return document_from_text(sys.stdin.read(), title="stdin")
    return load_document(Path(argument))


def run_read(args: argparse.Namespace) -> int:
    from miodesk.audio.player import AudioPlayer
    from miodesk.runtime import ThreadPlan
    from miodesk.text.segment import segment
    from miodesk.tts.engine import SpeechEngine
    from miodesk.tts.reader import FileSink, ReadingSession
    from miodesk.tts.streaming import ChunkPlan
    from miodesk.tts.voices import resolve_voice

    if args.output is not None and args.output.suffix.lower() not in (".wav", ".flac"):
        raise MioDeskError(f"Cannot write '{args.output.name}': a rendered reading must end in .wav or .flac.")
    if args.output is not None and not args.output.parent.exists():
        raise MioDeskError(f"Cannot write '{args.output}': the folder '{args.output.parent}' does not exist.")
    if not 0.0 <= args.volume <= 1.0:
        raise MioDeskError("--volume must be between 0.0 and 1.0.")
    server = _llm_server(args)
    document = _load_reading_text(args.file)
    utterances = segment(document.text)
    if not utterances:
        raise MioDeskError(f"'{args.file}' holds nothing that can be read aloud.")
    voice = resolve_voice(args.voice or _default_voice_name(document.text[:2000]))
    engine = SpeechEngine(
        model_path=args.model,
        codec_path=args.codec,
        provider=args.provider,
        thread_plan=ThreadPlan.for_reading(),  # the LLM runs ahead while the codec decodes
        llm_server=server,
    )
    sink: FileSink | AudioPlayer
    if args.output is not None:
        sink = FileSink(args.output, engine.sample_rate)
    else:
        sink = AudioPlayer(engine.sample_rate, device=args.device, volume=args.volume)

    errors: list[str] = []

    def show(event) -> None:
        if event.kind == "utterance_started":
            print(f"[{event.start}] {event.text}", flush=True)
        elif event.kind == "warning":
            print(f"miodesk: warning: {event.message} [{event.start}] {event.text}", file=sys.stderr, flush=True)
        elif event.kind == "error":
            errors.append(event.message)

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
    )
    completed = False
    try:
        session.start_at_char(max(0, args.from_char))
        while not session.wait(0.1):
            pass
        completed = not errors
    except KeyboardInterrupt:
        session.stop()
        print(f"\nstopped; continue with --from-char {session.position}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        session.stop()
        if isinstance(sink, FileSink):
            sink.close(keep=completed)
        else:
            sink.close()
    if errors:
        raise MioDeskError(
            f"{errors[0]} (stopped at character {session.position}; continue with --from-char {session.position})"
        )
    if args.stats:
        import json

        print(json.dumps(session.stats.as_dict()))
    if args.output is not None:
        print(f"{args.output}: {session.stats.audio_seconds:.1f} s at {engine.sample_rate} Hz")
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
    service = SpeechService(lambda: engine, store, queue_size=args.queue)
    try:
        return serve_forever(service, options)
    finally:
        service.close()


def run_bench(args: argparse.Namespace) -> int:
    # Here, not in bench_cli (which miodesk.bench imports): the measurement code loads only when bench runs.
    from miodesk import bench

    return bench.run_bench(args)


def run_text(args: argparse.Namespace) -> int:
    from miodesk.text.documents import load_document, outline_text

    print(outline_text(load_document(args.file)))
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


def _open_app(parser: argparse.ArgumentParser, verbose: bool, files: list[str]) -> int:
    from miodesk.ui.app import has_display, run_app

    if not has_display():
        # A terminal without a graphical session: say what the command offers instead.
        parser.print_help()
        print("\nmiodesk: no graphical display found, so the desktop app cannot open here.", file=sys.stderr)
        if files:
            print(f"miodesk: to hear it in this terminal: miodesk read {shlex.quote(files[0])}", file=sys.stderr)
            return EXIT_ERROR
        return 0
    return run_app([*(["--verbose"] if verbose else []), "--", *files])


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
        "text": run_text,
        "codec": lambda a: run_codec_export(a) if a.codec_command == "export" else run_codec_decode(a),
        "voices": run_voices,
        "models": run_models,
        "bench": run_bench,
        "serve": run_serve,
        "doctor": run_doctor,
    }
    handler: Callable[[argparse.Namespace], int]
    if args.install_desktop_entry or args.uninstall_desktop_entry:
        command, handler = "desktop-entry", run_desktop_entry
    elif args.command is None:
        return _open_app(parser, args.verbose, [])
    else:
        command, handler = args.command, handlers[args.command]
    try:
        return handler(args)
    except MioDeskError as error:
        log.info("user error: %s", error)
        print(f"miodesk: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("miodesk: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # the user sees one line; the traceback goes to the log file
        log.exception("unexpected error in %s", command)
        print(
            f"miodesk: unexpected error: {type(error).__name__}: {error} (details in {log_path})",
            file=sys.stderr,
        )
        return EXIT_ERROR
