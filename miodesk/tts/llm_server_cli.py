"""The command-line options that put the speech model on a server, for every command that speaks.

Kept apart from `miodesk.tts.llm_server` so that building the parser imports no HTTP code.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from miodesk.tts.llm_server import ServerConfig


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """--llm-base-url, --llm-api-key and --llm-model."""
    group = parser.add_argument_group("speech model on a server (OpenAI-compatible: llama-server, vLLM, Ollama …)")
    group.add_argument(
        "--llm-base-url", metavar="URL",
        help="use the speech model on this server instead of a local file, e.g. http://gpu-box:8000/v1 "
        "(default: $MIODESK_LLM_BASE_URL; an empty URL means none)",
    )
    group.add_argument(
        "--llm-api-key", metavar="KEY", help="its API key, if it needs one (default: $MIODESK_LLM_API_KEY)"
    )
    group.add_argument("--llm-model", metavar="NAME", help="the model on the server (default: the first it lists)")


def server_config_from_args(args: argparse.Namespace) -> ServerConfig | None:
    """The server that the options (first) or the environment name, or None: the speech model runs here."""
    from miodesk.tts.llm_server import ENV_BASE_URL, ServerConfig, ServerError

    model, key = getattr(args, "llm_model", None), getattr(args, "llm_api_key", None)
    config = ServerConfig.from_options(getattr(args, "llm_base_url", None), key, model)
    if config is None and (model or key):
        raise ServerError(f"--llm-model and --llm-api-key need a server: give --llm-base-url or set {ENV_BASE_URL}.")
    return config
