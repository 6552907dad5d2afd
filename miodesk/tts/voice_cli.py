"""`miodesk voices …`: list, import, record, create, embed, rename, remove and export voices."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from miodesk.filenames import extended_path

DEFAULT_RECORD_SECONDS = 20.0


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--codec", type=Path, help="MioCodec folder (config.yaml + model.safetensors); "
                        "default: the installed codec")
    parser.add_argument("--wavlm", type=Path, help="folder with config.json + model.safetensors or "
                        "pytorch_model.bin of microsoft/wavlm-base-plus; default: the installed one")


def add_voices_parser(commands: argparse._SubParsersAction) -> None:
    voices = commands.add_parser("voices", help="list, import and manage voices")
    actions = voices.add_subparsers(dest="voices_command", metavar="ACTION", required=True)
    actions.add_parser("list", help="list installed voices")
    voice_import = actions.add_parser("import", help="install a voice file (.pt, .npy, .npz)")
    voice_import.add_argument("file", type=Path)
    voice_import.add_argument("--name", help="name to store it under (default: the file name)")
    voice_import.add_argument("--overwrite", action="store_true", help="replace a voice of that name")

    rec = actions.add_parser("record", help="record your own voice from the microphone")
    rec.add_argument("name", help="name for the new voice")
    rec.add_argument("--device", help="microphone: a number or part of its name (default: the system's)")
    rec.add_argument("--seconds", type=float, default=DEFAULT_RECORD_SECONDS,
                     help=f"how long to record, 5 to 30 (default {DEFAULT_RECORD_SECONDS:.0f})")
    rec.add_argument("--language", choices=("en", "ja"), default="en", help="language of the text shown to read")
    rec.add_argument("--overwrite", action="store_true", help="replace a voice of that name")
    _add_model_options(rec)

    create = actions.add_parser("create", help="make a voice from a recording (WAV, FLAC, OGG, MP3)")
    create.add_argument("name", help="name for the new voice")
    create.add_argument("--from", dest="source", required=True, type=Path, metavar="FILE",
                        help="10–30 s of one person speaking")
    create.add_argument("--overwrite", action="store_true", help="replace a voice of that name")
    _add_model_options(create)

    embed = actions.add_parser("embed", help="compute the voice vector of an audio file (no trimming)")
    embed.add_argument("audio", type=Path)
    embed.add_argument("-o", "--output", required=True, type=Path, help="voice.npy (float32, 128 values)")
    _add_model_options(embed)

    rename = actions.add_parser("rename", help="rename a voice")
    rename.add_argument("old")
    rename.add_argument("new")
    remove = actions.add_parser("remove", help="delete a voice (and its recording)")
    remove.add_argument("name")
    export = actions.add_parser("export", help="write a voice to a file (.npy, .npz; .flac/.wav: its recording)")
    export.add_argument("name")
    export.add_argument("-o", "--output", required=True, type=Path)


def _encoder(args: argparse.Namespace):
    from miodesk.tts.voice_encoder import VoiceEncoder

    return VoiceEncoder(args.codec, args.wavlm)


def _warn(message: str) -> None:
    print(f"miodesk: warning: {message}", file=sys.stderr)


def _save_checked(args: argparse.Namespace, store, samples, rate: int, source: dict) -> int:
    """Quality-check, trim and save; errors refuse with one line and nothing saved."""
    from miodesk.audio.recorder import analyse, trim
    from miodesk.errors import VoiceRecordingError
    from miodesk.tts.voice_encoder import make_voice_from_audio, to_mono
    from miodesk.tts.voices import validate_voice_name

    validate_voice_name(args.name)
    if args.name in store and not args.overwrite:
        raise VoiceRecordingError(
            f"A voice named {args.name!r} already exists; choose another name or add --overwrite.")
    encoder = _encoder(args)  # missing models fail before any hint is printed
    mono = to_mono(samples)
    report = analyse(mono, rate)
    if not report.ok:
        raise VoiceRecordingError(f"{report.errors[0].message} Nothing was saved.")
    for issue in report.warnings:
        _warn(issue.message)
    metadata = {"source": source, "quality": {
        "speech_seconds": round(report.speech_seconds, 2), "snr_db": round(report.snr_db, 1),
        "speech_dbfs": round(report.speech_db, 1), "clipped_fraction": round(report.clipped_fraction, 5),
        "warnings": [i.code for i in report.warnings]}}
    voice = make_voice_from_audio(store, args.name, trim(mono, report), rate, encoder, metadata=metadata,
                                  overwrite=args.overwrite)
    print(f"saved voice '{voice.name}' ({report.speech_seconds:.1f} s of speech)")
    return 0


def _record(args: argparse.Namespace, store) -> int:
    from miodesk.audio.recorder import MAX_RECORD_SECONDS, Level, reading_text, record
    from miodesk.errors import MioDeskError
    from miodesk.tts.voices import validate_voice_name

    validate_voice_name(args.name)
    if not 1.0 <= args.seconds <= MAX_RECORD_SECONDS:
        raise MioDeskError(f"--seconds must be between 1 and {MAX_RECORD_SECONDS:.0f}.")
    if args.name in store and not args.overwrite:
        raise MioDeskError(f"A voice named {args.name!r} already exists; choose another name or add --overwrite.")
    _encoder(args)  # fail on missing models before asking anyone to speak
    print(f"Recording {args.seconds:.0f} s. Read aloud:\n\n{reading_text(args.language)}\n", flush=True)
    live = sys.stderr.isatty()

    def meter(level: Level, elapsed: float) -> None:
        if live:
            bars = int(max(0.0, min(1.0, (level.rms_db + 60.0) / 60.0)) * 30)
            sys.stderr.write(f"\r{elapsed:5.1f} s  [{'#' * bars:<30}] {level.peak_db:6.1f} dBFS peak")
            sys.stderr.flush()

    recording = record(args.seconds, device=args.device, on_level=meter)
    if live:
        sys.stderr.write("\n")
    source = {"method": "recorded", "device": str(args.device or "default"), "sample_rate": recording.sample_rate}
    return _save_checked(args, store, recording.samples, recording.sample_rate, source)


def run_voices(args: argparse.Namespace) -> int:
    from miodesk.errors import MioDeskError
    from miodesk.tts.voices import VoiceStore

    store = VoiceStore()
    command = args.voices_command
    if command == "import":
        voice = store.import_file(args.file, name=args.name, overwrite=args.overwrite)
        print(f"installed voice '{voice.name}'")
        return 0
    if command == "record":
        return _record(args, store)
    if command == "create":
        from miodesk.tts.voice_encoder import read_audio

        samples, rate = read_audio(args.source)
        return _save_checked(args, store, samples, rate, {"method": "file", "file": args.source.name})
    if command == "embed":
        import numpy as np

        if args.output.suffix.lower() != ".npy":
            raise MioDeskError(f"Cannot write '{args.output.name}': the voice vector is written as .npy.")
        if not Path(extended_path(args.output)).parent.exists():
            raise MioDeskError(f"Cannot write '{args.output}': the folder '{args.output.parent}' does not exist.")
        from miodesk.tts.voice_encoder import read_audio

        samples, rate = read_audio(args.audio)
        vector = _encoder(args).encode_samples(samples, rate).astype(np.float32)
        from miodesk.atomic import atomic_write_bytes
        from miodesk.tts.voices import _npy_bytes

        atomic_write_bytes(args.output, _npy_bytes(vector))
        print(f"{args.output}: voice vector of {args.audio.name} (L2 norm {float(np.linalg.norm(vector)):.2f})")
        return 0
    if command == "rename":
        voice = store.rename(args.old, args.new)
        print(f"renamed voice '{args.old}' to '{voice.name}'")
        return 0
    if command == "remove":
        store.delete(args.name)
        print(f"removed voice '{args.name}'")
        return 0
    if command == "export":
        return _export(args, store)
    names = store.names()
    if not names:
        print(f"No voices installed in {store.root}. Import one with `miodesk voices import FILE`.")
    for name in names:
        print(name)
    return 0


def _export(args: argparse.Namespace, store) -> int:
    import io

    import numpy as np

    from miodesk.atomic import atomic_write_bytes
    from miodesk.errors import MioDeskError
    from miodesk.tts.voice_encoder import decode_flac, recording_path

    voice = store.get(args.name)
    out: Path = args.output
    suffix = out.suffix.lower()
    if not Path(extended_path(out)).parent.exists():
        raise MioDeskError(f"Cannot write '{out}': the folder '{out.parent}' does not exist.")
    if suffix == ".npy":
        buffer = io.BytesIO()
        np.save(buffer, voice.vector.astype("<f4"), allow_pickle=False)
        data = buffer.getvalue()
    elif suffix == ".npz":
        buffer = io.BytesIO()
        np.savez(buffer, global_embedding=voice.vector.astype("<f4"))
        data = buffer.getvalue()
    elif suffix in (".flac", ".wav"):
        flac = recording_path(store, args.name)
        if not flac.is_file():
            raise MioDeskError(f"Voice {args.name!r} has no recording to export (it was imported as a vector).")
        data = flac.read_bytes()
        if suffix == ".wav":
            from miodesk.audio.files import encode_audio

            samples, rate = decode_flac(data)
            data = encode_audio(samples, rate, ".wav")
    else:
        raise MioDeskError(f"Cannot write '{out.name}': export to .npy or .npz (the vector) or .flac/.wav "
                           "(the recording).")
    try:
        atomic_write_bytes(out, data)
    except OSError as error:
        raise MioDeskError(f"Cannot write '{out}': {error.strerror or error}.") from None
    print(f"exported voice '{args.name}' to {out}")
    return 0
