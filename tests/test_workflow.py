"""The hosted CI (.github/workflows/ci.yml) cannot run here, so it is checked here.

- The workflow is valid: the GitHub-workflow JSON schema that check-jsonschema vendors (offline), and
  actionlint with shellcheck (both installed by tests/run.sh); any finding fails.
- It stays thin: every `run:` step is one call of a script in the repository, with plain arguments.
- Its matrix, toolchains, cache, artifacts and release are what the project promises (Windows with
  MSVC, macOS on Apple silicon, Python 3.11, release only from v* tags), and every expression names a
  step, matrix key or job that exists.
- The scripts in installer/ci/ run here: test.py's selection for each platform (every file it names
  exists; the Windows set leaves out what needs PulseAudio, Xvfb or Unix-only modules), and the smoke
  scripts against the Linux frozen build that tests/test_frozen.py makes (built once, cached).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO_ROOT
from test_frozen import FrozenBuild, frozen  # noqa: F401 - the cached Linux build (fixture)

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "ci.yml"
CI_SCRIPTS = REPO_ROOT / "installer" / "ci"
OPERATING_SYSTEMS = {"ubuntu-latest", "windows-latest", "macos-latest"}


def load_workflow() -> dict:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as the boolean true
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def all_steps(workflow: dict) -> list[tuple[str, dict]]:
    return [(job_name, step) for job_name, job in workflow["jobs"].items() for step in job.get("steps", [])]


def tool(name: str) -> str | None:
    """A program from this environment's bin folder (a pip-installed tool) or from PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else shutil.which(name)


# --- validators -------------------------------------------------------------------------------------------
def schema_check(path: Path) -> subprocess.CompletedProcess:
    if importlib.util.find_spec("check_jsonschema") is not None:
        command = [sys.executable, "-m", "check_jsonschema"]
    elif tool("check-jsonschema"):
        command = [tool("check-jsonschema")]
    else:
        pytest.fail("check-jsonschema is missing: it comes with the test extra (pip install -e '.[test]')")
    return subprocess.run([*command, "--builtin-schema", "vendor.github-workflows", str(path)],
                          capture_output=True, text=True, timeout=120)


def actionlint(path: Path) -> subprocess.CompletedProcess:
    program = tool("actionlint")
    if program is None:
        pytest.fail("actionlint is missing: it comes with the test extra (pip install -e '.[test]')")
    shellcheck = tool("shellcheck") or ""  # an empty path turns that rule off
    pyflakes = tool("pyflakes") or ""
    return subprocess.run([program, f"-shellcheck={shellcheck}", f"-pyflakes={pyflakes}", str(path)],
                          capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)


def test_workflow_matches_the_github_workflow_schema() -> None:
    result = schema_check(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_finds_nothing() -> None:
    result = actionlint(WORKFLOW)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_the_validators_catch_a_broken_copy(tmp_path: Path) -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    broken = tmp_path / ".github" / "workflows" / "ci.yml"
    broken.parent.mkdir(parents=True)
    assert "timeout-minutes: 150" in text and "steps.install.outputs" in text
    broken.write_text(text.replace("timeout-minutes: 150", "timeout-minutes: soon"), encoding="utf-8")
    assert schema_check(broken).returncode != 0
    broken.write_text(text.replace("steps.install.outputs", "steps.instal.outputs"), encoding="utf-8")
    result = actionlint(broken)
    assert result.returncode != 0 and "instal" in result.stdout, result.stdout


# --- thin: steps are scripts --------------------------------------------------------------------------------
RUN_STEP = re.compile(r"^(?P<runner>python|bash) (?P<script>[\w./-]+)(?P<args>( [\w./=-]+)*)$")


def test_run_steps_only_call_scripts_of_the_repository() -> None:
    runs = [(job, step) for job, step in all_steps(load_workflow()) if "run" in step]
    assert len(runs) >= 5, runs
    for job, step in runs:
        command = step["run"].strip()
        match = RUN_STEP.match(command)
        assert match, f"{job}: `{command}` is not one call of a repository script with plain arguments"
        script = REPO_ROOT / match["script"]
        assert script.is_file(), f"{job}: {match['script']} does not exist"
        assert "shell" not in step, f"{job}: {command}: the runner's default shell is enough for one call"
        if match["runner"] == "python":
            assert script.parent == CI_SCRIPTS and 'if __name__ == "__main__":' in script.read_text(encoding="utf-8")


def test_ci_scripts_need_only_the_standard_library_to_start() -> None:
    """install.py runs before anything is installed, and all of them on bare Windows and macOS runners:
    the top of every script imports only the standard library and its neighbour common.py."""
    scripts = sorted(CI_SCRIPTS.glob("*.py"))
    assert {p.name for p in scripts} >= {"common.py", "install.py", "test.py", "build.py", "smoke_frozen.py",
                                         "smoke_install.py"}
    for script in scripts:
        tree = ast.parse(script.read_text(encoding="utf-8"))
        for node in tree.body:
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top in ("__future__", "common"), f"{script.name}: {name}"


@pytest.mark.parametrize("script", ["test.py", "smoke_frozen.py", "smoke_install.py"])
def test_ci_scripts_explain_themselves(script: str) -> None:
    result = subprocess.run([sys.executable, str(CI_SCRIPTS / script), "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and "usage:" in result.stdout, result.stdout + result.stderr


# --- what the workflow promises ----------------------------------------------------------------------------
def test_matrix_toolchains_and_cache() -> None:
    workflow = load_workflow()
    assert set(workflow["on"]) >= {"push", "pull_request"} and workflow["on"]["push"]["tags"] == ["v*"]
    assert workflow["permissions"] == {"contents": "read"}
    build = workflow["jobs"]["build"]
    assert set(build["strategy"]["matrix"]["os"]) == OPERATING_SYSTEMS
    assert build["strategy"]["fail-fast"] is False and build["runs-on"] == "${{ matrix.os }}"
    steps = build["steps"]
    uses = {step["uses"].split("@")[0]: step for step in steps if "uses" in step}
    assert str(uses["actions/setup-python"]["with"]["python-version"]) == "3.11"
    msvc = uses["ilammy/msvc-dev-cmd"]
    assert msvc["if"] == "runner.os == 'Windows'" and msvc["with"]["arch"] == "x64"
    # the compiler environment is open before the step that compiles llama-cpp-python
    order = [step.get("id") or step.get("uses", "").split("@")[0] for step in steps]
    assert order.index("ilammy/msvc-dev-cmd") < order.index("install") < order.index("build")
    # pip's wheel cache: the folder pip uses is the one restored and saved
    cache_dir = workflow["env"]["PIP_CACHE_DIR"]
    restore, save = uses["actions/cache/restore"], uses["actions/cache/save"]
    assert restore["with"]["path"] == save["with"]["path"] == f"{cache_dir}/wheels"
    assert save["if"] == "steps.install.outputs.new-wheels == 'true'"
    upload = uses["actions/upload-artifact"]
    assert upload["with"]["path"] == "dist/packages/" and upload["with"]["if-no-files-found"] == "error"
    scripts = [step["run"] for step in steps if "run" in step]
    for script in ("install.py", "test.py", "build.py", "smoke_frozen.py", "smoke_install.py"):
        assert any(f"installer/ci/{script}" in line for line in scripts), script


def test_release_only_from_tags_after_every_system_passed() -> None:
    workflow = load_workflow()
    release = workflow["jobs"]["release"]
    assert release["needs"] == "build" and release["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert release["permissions"] == {"contents": "write"}
    uses = {step["uses"].split("@")[0]: step for step in release["steps"]}
    assert uses["actions/download-artifact"]["with"]["pattern"] == "MioDesk-*"
    assert uses["softprops/action-gh-release"]["with"]["files"] == "packages/*"
    # only the release job may write to the repository
    assert all("permissions" not in job for name, job in workflow["jobs"].items() if name != "release")


def test_actions_are_pinned_to_a_release() -> None:
    for job, step in all_steps(load_workflow()):
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})", step["uses"]), (job, step["uses"])


def test_expressions_name_what_exists() -> None:
    """steps.<id>, matrix.<key> and needs.<job> in expressions refer to something defined."""
    workflow = load_workflow()
    for job_name, job in workflow["jobs"].items():
        matrix = set(job.get("strategy", {}).get("matrix", {}))
        needs = job.get("needs", [])
        needs = {needs} if isinstance(needs, str) else set(needs)
        seen_ids: set[str] = set()
        for step in job.get("steps", []):
            text = yaml.safe_dump(step)
            for step_id in re.findall(r"steps\.([\w-]+)\.", text):
                assert step_id in seen_ids, f"{job_name}: steps.{step_id} is not an earlier step"
            if "id" in step:
                seen_ids.add(step["id"])
        text = yaml.safe_dump(job)
        for key in re.findall(r"matrix\.([\w-]+)", text):
            assert key in matrix, f"{job_name}: matrix.{key}"
        for other in re.findall(r"needs\.([\w-]+)", text):
            assert other in needs, f"{job_name}: needs.{other}"


# --- test.py's choice per platform -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def selection(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("selection") / "selection.json"
    result = subprocess.run([sys.executable, str(CI_SCRIPTS / "test.py"), "--list", "--json", str(out)],
                            capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    print(result.stdout[result.stdout.find("\nlinux ("):])  # the per-platform summary (pytest -s)
    return json.loads(out.read_text(encoding="utf-8"))


def _files(nodeids) -> set[str]:
    return {nodeid.split("::", 1)[0] for nodeid in nodeids}


UNIX_ONLY = {"fcntl", "resource", "termios", "pwd", "grp", "pty", "tty"}


def test_selection_names_only_existing_tests(selection: dict) -> None:
    assert set(selection) == {"linux", "windows", "macos"}
    for platform, chosen in selection.items():
        named = _files(chosen["selected"]) | _files(chosen["deselected"]) | set(chosen["not_collected"])
        for name in named:
            assert (REPO_ROOT / name).is_file() and name.startswith("tests/test_"), (platform, name)
        assert chosen["selected"], platform
    everything = {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "tests").glob("test_*.py")
                  if "def test_" in p.read_text(encoding="utf-8")}  # test_documents_samples.py only helps
    assert _files(selection["linux"]["selected"]) | set(selection["linux"]["not_collected"]) == everything


def test_windows_runs_the_platform_neutral_tests_only(selection: dict) -> None:
    windows = selection["windows"]
    files = _files(windows["selected"])
    # what the runner cannot give: PulseAudio, Xvfb, Unix-only modules at import, the Linux package
    for name in ("tests/test_frozen.py", "tests/test_gui_app.py", "tests/test_gui_reading.py",
                 "tests/test_record_voice_dialog.py", "tests/test_desktop_entry.py", "tests/test_bench_peers.py"):
        assert name not in files, name
    # read independently of test.py: no selected file imports a Unix-only module at load time, and no
    # selected test asks for the sound server or an X server itself
    for name in files:
        tree = ast.parse((REPO_ROOT / name).read_text(encoding="utf-8"))
        imported = {alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in tree.body if isinstance(node, ast.ImportFrom) and node.module}
        assert not imported & UNIX_ONLY, (name, imported & UNIX_ONLY)
        functions = {node.name: node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        for nodeid in (n for n in windows["selected"] if n.startswith(f"{name}::")):
            function = functions[nodeid.split("::")[-1].split("[")[0]]
            asked = {arg.arg for arg in function.args.args} & {"pulse_sink", "virtual_mic", "qtbot", "qapp", "x_display"}
            assert not asked, (nodeid, asked)
    assert "tests/test_player.py::test_ring_buffer_wraps_and_reports_what_it_took" in windows["selected"]
    assert "tests/test_player.py::test_volume_scales_the_output" in windows["deselected"]
    for nodeid, missing in windows["deselected"].items():
        assert set(missing) <= {"pulseaudio", "xvfb", "espeak-ng", "unix", "freedesktop", "jack"}, (nodeid, missing)
    # the platform-neutral core does run there: documents, codec goldens, speak/read -o, models, voices, settings
    for name in ("tests/test_documents.py", "tests/test_codec_golden.py", "tests/test_cli_speak.py",
                 "tests/test_models_catalog.py", "tests/test_voices.py", "tests/test_segment.py"):
        assert name in files, name
    assert "tests/test_frozen.py" in windows["not_collected"]
    # macOS has the Unix modules: everything Windows runs, and more
    assert set(windows["selected"]) <= set(selection["macos"]["selected"])
    # Linux runs the whole suite but the peers' measurement
    assert selection["linux"]["deselected"] == {}
    assert set(selection["linux"]["not_collected"]) == {"tests/test_bench_peers.py"}


# --- the smoke scripts, here on the Linux build ---------------------------------------------------------------
def _run_script(name: str, dist: Path, timeout: float) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MIODESK_HOME")}
    result = subprocess.run([sys.executable, str(CI_SCRIPTS / name), "--dist", str(dist)], capture_output=True,
                            text=True, encoding="utf-8", timeout=timeout, env=env, cwd=REPO_ROOT)
    print(result.stdout[-4000:])
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return result


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux build")
def test_smoke_frozen_passes_on_the_linux_build(frozen: FrozenBuild) -> None:  # noqa: F811
    result = _run_script("smoke_frozen.py", frozen.folder.parent, timeout=900)
    assert "smoke_frozen: all checks passed" in result.stdout
    assert "window on a private Xvfb" in result.stdout and "closed with 0" in result.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux build")
def test_smoke_install_passes_on_the_linux_tarball(frozen: FrozenBuild) -> None:  # noqa: F811
    result = _run_script("smoke_install.py", frozen.folder.parent, timeout=600)
    assert "the linux package installs, runs and uninstalls" in result.stdout
