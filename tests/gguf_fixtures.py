"""Session-scoped generated MioTTS-like GGUF models, shared by tests that need a speech LLM.

Import the fixtures you use into a test module (``from tests.gguf_fixtures import qwen3_model``) or
call `make_model` directly. Models are tiny (a few MB) and written once per session.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from miodesk.synthetic.gguf import GeneratedModel, write_test_gguf

_cache: dict[tuple, GeneratedModel] = {}


def make_model(root: Path, name: str, arch: str = "qwen3", **kwargs) -> GeneratedModel:
    """Write (once per session and argument set) a generated model under `root`."""
    key = (str(root), name, arch, tuple(sorted(kwargs.items())))
    if key not in _cache:
        _cache[key] = write_test_gguf(root / f"{name}.gguf", arch, **kwargs)  # type: ignore[arg-type]
    return _cache[key]


@pytest.fixture(scope="session")
def gguf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gguf")


@pytest.fixture(scope="session")
def qwen3_model(gguf_dir: Path) -> GeneratedModel:
    """qwen3, stops after ~20 tokens (EOG probability 0.05 per step)."""
    return make_model(gguf_dir, "qwen3", "qwen3")


@pytest.fixture(scope="session")
def qwen3_nostop_model(gguf_dir: Path) -> GeneratedModel:
    """qwen3 that never emits EOG: every generation runs to max_tokens."""
    return make_model(gguf_dir, "qwen3_nostop", "qwen3", eog_probability=None)


@pytest.fixture(scope="session")
def falcon_h1_model(gguf_dir: Path) -> GeneratedModel:
    return make_model(gguf_dir, "falcon_h1", "falcon-h1")


@pytest.fixture(scope="session")
def lfm2_model(gguf_dir: Path) -> GeneratedModel:
    return make_model(gguf_dir, "lfm2", "lfm2")
