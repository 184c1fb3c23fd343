"""docs/ci/: the GitHub Actions and GitLab CI templates parse, and every command they run is one
this repository really has: pytest options the installed plugins accept, --kp-* values that
parse, kpmodel subcommands, make targets, files that exist, extras that exist, torch pins equal
to requirements.txt, torch from PyTorch's own wheel index."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from pytest_kpmodel.cli import SUBCOMMANDS
from pytest_kpmodel.errors import KpModelError
from pytest_kpmodel.required import parse

ROOT = Path(__file__).resolve().parents[1]
CI = ROOT / "docs" / "ci"
GITHUB, GITLAB = CI / "github-actions.yml", CI / "gitlab-ci.yml"
# Commands that are not the repository's: the shell's and the runner's own.
VALUE_FLAGS = {"-n", "-k", "-m", "-p", "-o", "-W", "-c"}  # pytest short options with a value
GENERIC = {"cat", "echo", "mkdir", "ls", "nvidia-smi"}
OUTPUTS = ("reports/", ".benchmarks", "$GITHUB_STEP_SUMMARY")
GITLAB_KEYWORDS = {"stages", "variables", "default", "include", "workflow", "image", "cache"}


@pytest.fixture(scope="module")
def pytest_options(tmp_path_factory) -> set[str]:
    """Every option the installed pytest and its plugins accept (--help, outside this repo)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--help"], cwd=tmp_path_factory.mktemp("help"), env=env,
        capture_output=True, text=True, check=True, timeout=300,
    ).stdout  # fmt: skip
    return set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", out))


def _pins() -> dict[str, str]:
    text = (ROOT / "requirements.txt").read_text() + (ROOT / "requirements-dev.txt").read_text()
    return dict(re.findall(r"^(torch|torchvision)==(\S+)", text, re.M))


def _expand(command: str, env: dict[str, str]) -> str:
    command = re.sub(r"\$\{\{\s*env\.(\w+)\s*\}\}", lambda m: env.get(m.group(1), m.group(0)),
                     command)  # fmt: skip
    return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), m.group(0)), command)


def _commands(block: str) -> list[str]:
    """Shell lines of a run/script block: comments dropped, continuations joined."""
    text = re.sub(r"\\\n", " ", block)
    lines = [line.split(" #")[0].strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


class Checker:
    def __init__(self, options: set[str]) -> None:
        self.options = options
        self.makefile = (ROOT / "Makefile").read_text()
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        self.extras = set(project["optional-dependencies"])
        self.pins = _pins()
        self.seen: set[str] = set()  # first words checked, for the coverage assertions

    def path(self, value: str, what: str) -> None:
        if value.startswith(OUTPUTS):
            return
        assert (ROOT / value).exists(), f"{what}: {value} does not exist in the repository"

    def check(self, command: str, env: dict[str, str]) -> None:
        line = _expand(command, env)
        assert "$" not in line.replace("$GITHUB_STEP_SUMMARY", ""), f"unset variable: {line}"
        words = shlex.split(line)
        if ">>" in words:  # a redirection's target is an output
            words = words[: words.index(">>")]
        first = words[0]
        self.seen.add(first)
        if first == "python" and words[1:3] == ["-m", "pytest"]:
            self.pytest(words[3:])
        elif first == "python" and words[1:3] == ["-m", "pip"]:
            self.pip(words[3:])
        elif first == "kpmodel":
            assert words[1] in SUBCOMMANDS, f"kpmodel has no subcommand {words[1]!r}"
            for flag, value in zip(words, words[1:], strict=False):
                if flag == "--key":
                    self.path(value, "kpmodel --key")
            self.path(words[2], f"kpmodel {words[1]}")
        elif first == "make":
            for target in words[1:]:
                assert re.search(rf"^{re.escape(target)}:", self.makefile, re.M), target
        elif first == "python":
            self.path(words[1], "python script")
        elif first == "cat":
            for value in words[1:]:
                self.path(value, "cat")
        else:
            assert first in GENERIC, f"{first!r} is not a command of this repository: {line}"

    def pytest(self, args: list[str]) -> None:
        value_of = None  # the short option whose value comes next (-n 2, -k expr)
        for arg in args:
            if value_of is not None:
                value_of = None
                continue
            if arg in VALUE_FLAGS:
                value_of = arg
            if not arg.startswith("-"):
                self.path(arg, "pytest argument")
                continue
            name, _, value = arg.partition("=")
            assert name in self.options, f"pytest has no option {name}"
            if name in ("--kp-model", "--kp-dataset", "--kp-baseline"):
                self.path(value, name)
            if name == "--kp-require":
                parse(value)  # an unknown name raises, listing the valid ones

    def pip(self, args: list[str]) -> None:
        assert args[0] == "install", args
        it = iter(args[1:])
        for arg in it:
            if arg in ("-r", "--requirement"):
                self.path(next(it), "pip -r")
            elif arg in ("--index-url", "--extra-index-url"):
                url = next(it)
                assert url.startswith("https://download.pytorch.org/whl/"), url
            elif arg.startswith("."):
                extras = re.fullmatch(r"\.(?:\[([\w,]+)\])?", arg)
                assert extras, arg
                for extra in (extras.group(1) or "").split(","):
                    assert not extra or extra in self.extras, f"no extra [{extra}]"
            elif "==" in arg:
                name, version = arg.split("==")
                assert self.pins.get(name) == version, f"{arg}: requirements.txt pins {self.pins}"
            else:
                assert arg.startswith("-"), f"pip install {arg}: not from this repository"


def _github() -> dict:
    return yaml.safe_load(GITHUB.read_text())


def _gitlab() -> dict:
    return yaml.safe_load(GITLAB.read_text())


def test_github_workflow_runs_only_what_the_repository_has(pytest_options):
    flow = _github()
    assert set(flow[True]) == {"pull_request", "push"}  # YAML 1.1 reads the key `on` as True
    checker = Checker(pytest_options)
    for job in flow["jobs"].values():
        for step in job["steps"]:
            env = {**flow.get("env", {}), **job.get("env", {}), **step.get("env", {})}
            for command in _commands(step.get("run", "")):
                checker.check(command, env)
    assert {"python", "kpmodel", "cat"} <= checker.seen


def test_github_workflow_has_each_piece_of_a_gate():
    flow = _github()
    cpu, gpu = flow["jobs"]["accept-cpu"], flow["jobs"]["accept-gpu"]
    uses = {step.get("uses", "").split("@")[0]: step for step in cpu["steps"]}
    runs = " ".join(step.get("run", "") for step in cpu["steps"])
    env = flow["env"]
    assert (ROOT / env["KP_WEIGHTS"]).is_file() and (ROOT / env["KP_ANNOTATIONS"]).is_file()
    cache = uses["actions/cache"]["with"]
    assert cache["path"] == ".pytest_cache/d/kpmodel/predictions"
    assert "hashFiles(env.KP_WEIGHTS, env.KP_ANNOTATIONS)" in cache["key"]
    assert "--index-url https://download.pytorch.org/whl/cpu torch==" in runs
    assert "--junit-xml=reports/junit.xml" in runs and "--kp-report=reports/kp" in runs
    assert '>> "$GITHUB_STEP_SUMMARY"' in runs and "--kp-summary=reports/summary.md" in runs
    assert uses["actions/upload-artifact"]["with"]["path"] == "reports/"
    assert "--benchmark-compare" in runs and "--benchmark-json" in runs
    assert uses["actions/cache/restore"]["with"]["path"] == ".benchmarks"
    assert "default_branch" in uses["actions/cache/save"]["if"]
    assert "self-hosted" in gpu["runs-on"] and "gpu" in gpu["runs-on"]
    gpu_runs = " ".join(step.get("run", "") for step in gpu["steps"])
    assert "--kp-device=cuda" in gpu_runs and "--kp-require=gpu,fp16,vram" in gpu_runs


def _gitlab_jobs(pipeline: dict) -> dict[str, dict]:
    return {k: v for k, v in pipeline.items() if k not in GITLAB_KEYWORDS}


def _resolved(pipeline: dict, job: dict) -> dict:
    """A job with what it extends (GitLab's extends: a deep merge, the job winning)."""
    base = job.get("extends")
    if not base:
        return job
    parent = _resolved(pipeline, pipeline[base])
    return {**parent, **job, "variables": {**parent.get("variables", {}),
                                           **job.get("variables", {})}}  # fmt: skip


def test_gitlab_pipeline_runs_only_what_the_repository_has(pytest_options):
    pipeline = _gitlab()
    checker = Checker(pytest_options)
    for job in _gitlab_jobs(pipeline).values():
        env = {**pipeline["variables"], **job.get("variables", {})}
        for key in ("before_script", "script", "after_script"):
            for block in job.get(key, []):
                for command in _commands(block):
                    checker.check(command, env)
    assert {"python", "kpmodel"} <= checker.seen


def test_gitlab_pipeline_has_each_piece_of_a_gate():
    pipeline = _gitlab()
    jobs = {name: _resolved(pipeline, job) for name, job in _gitlab_jobs(pipeline).items()}
    cpu, gpu = jobs["accept-cpu"], jobs["accept-gpu"]
    assert cpu["artifacts"]["reports"]["junit"] == "reports/junit.xml"
    assert "reports/" in cpu["artifacts"]["paths"] and cpu["artifacts"]["when"] == "always"
    predictions = cpu["cache"][0]
    assert predictions["paths"] == [".pytest_cache/d/kpmodel/predictions"]
    for path in predictions["key"]["files"]:  # keyed on the weights and the annotations
        assert (ROOT / path).is_file()
    assert {c["policy"] for c in cpu["cache"] if c.get("paths") == [".benchmarks"]} == {"pull"}
    default = jobs["accept-cpu-default-branch"]
    assert {c["policy"] for c in default["cache"] if c.get("paths") == [".benchmarks"]} == {
        "pull-push"
    }
    script = " ".join(cpu["script"])
    assert "--index-url https://download.pytorch.org/whl/cpu torch==" in script
    assert "--kp-summary=reports/summary.md" in script and "--benchmark-compare" in script
    assert gpu["tags"] == ["gpu"] and "--kp-require=gpu,fp16,vram" in " ".join(gpu["script"])


def test_checker_refuses_what_the_repository_does_not_have(pytest_options):
    """The checks above can fail: each kind of wrong command is caught."""
    checker = Checker(pytest_options)
    env = {"KP_MODEL": "example_suite/models/kp-tiny-mod/kpmodel.toml"}
    bad = [
        "python -m pytest example_suite --kp-modle=$KP_MODEL",
        "python -m pytest no_such_specs --kp-model=$KP_MODEL",
        "python -m pytest example_suite --kp-require=gpu,fp61",
        "kpmodel sing $KP_MODEL --key example_suite/keys/DEMO-ONLY-vendor-key.pub",
        "make deploy",
        'python -m pip install ".[fastest]"',
        "python -m pip install --index-url https://example.org/simple torch==2.14.1",
        "python -m pip install torch==2.0.0",
        "curl https://example.org/install.sh",
        "python -m pytest example_suite --kp-model=$UNSET",
    ]
    for command in bad:
        with pytest.raises((AssertionError, KpModelError)):
            checker.check(command, env)
    checker.check("make test", env)
    checker.check("python -m pytest example_suite --kp-model=$KP_MODEL -n 2", env)
