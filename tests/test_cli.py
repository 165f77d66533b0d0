"""The command lines: bad input is one line on stderr and exit status 2, run as a user runs them."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import llm_exploration
from llm_exploration import cli
from llm_exploration.grpo.cli import main as grpo_main
from llm_exploration.grpo.config import GRPOConfig

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / "configs" / "grpo" / "smoke.yaml")
FIXTURES = ROOT / "tests" / "posts" / "fixtures"
GRPO = "python -m llm_exploration.grpo: error: "
POSTS = "python -m llm_exploration.posts: error: "
VALID_PROFILES = "expected one of 'smoke', 'cpu', 'gpu'."


def command(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run ``python -m <args>`` as a user would, with this checkout's package first on the path."""
    full = {k: v for k, v in os.environ.items() if k != "LLM_EXPLORATION_PROFILE"} | (env or {})
    full["PYTHONPATH"] = os.pathsep.join([str(Path(llm_exploration.__file__).parents[1]),
                                          full.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=full,
                          cwd=cwd, timeout=600, check=False)


def one_line_error(result: subprocess.CompletedProcess, prefix: str) -> str:
    """Assert exit status 2 and a single line on stderr starting with ``prefix``; return it."""
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(prefix), result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr.strip()


# --- the cases of issue 16, in a subprocess ------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["fit", "--config", SMOKE, "--set", "learning_rate=abc"],
     "learning_rate='abc' (from --set) is invalid: expected a number > 0."),
    (["evaluate", "--config", SMOKE, "--set", "eval_size=-3"],
     "eval_size=-3 (from --set) is invalid: expected an integer >= 0."),
    (["fit", "--config", "nonexist.yaml"],
     "config='nonexist.yaml' (from --config) is invalid: expected a YAML file. No such file: "),
    (["fit", "--config", SMOKE, "--set", "num_generation=3"],
     "unknown setting 'num_generation' (from --set): GRPOConfig has no such field; did you mean "),
    (["fit", "--config", SMOKE, "--set", "max_steps"], "--set 'max_steps': write field=value"),
    (["evaluate", "--config", SMOKE, "--n", "0"], "n=0 (from --n) is invalid: expected an integer >= 1."),
    (["evaluate", "--config", SMOKE, "--split", "test"],
     "split='test' (from --split) is invalid: expected one of 'train', 'eval'."),
    (["fit"], "the following arguments are required: --config"),
])
def test_grpo_bad_input(args, message):
    err = one_line_error(command("llm_exploration.grpo", *args), "python -m llm_exploration.grpo")
    assert message in err


def test_grpo_data_mirror_that_is_not_a_folder():
    result = command("llm_exploration.grpo", "evaluate", "--config", SMOKE, "--set", "dataset=openai/gsm8k",
                     env={"LLM_EXPLORATION_DATA_MIRROR": "/nowhere"})
    err = one_line_error(result, GRPO)
    assert "LLM_EXPLORATION_DATA_MIRROR='/nowhere' (from the environment) is invalid: expected a folder" in err


def test_grpo_model_of_the_wrong_kind():
    err = one_line_error(command("llm_exploration.grpo", "fit", "--config", SMOKE, "--set",
                                 "model=all-minilm-l6-v2"), GRPO)
    assert "model='all-minilm-l6-v2' is invalid: expected an embedded decoder" in err


def test_posts_unknown_post_lists_the_posts():
    err = one_line_error(command("llm_exploration.posts", "run", "nope"), POSTS)
    assert "post='nope' is invalid: expected one of 'grpo-trainer', " in err and "'superposition'" in err


@pytest.mark.parametrize("args, env, source", [
    (["run", "superposition"], {"LLM_EXPLORATION_PROFILE": "laptop"},
     "(from environment variable LLM_EXPLORATION_PROFILE)"),
    (["run", "superposition", "--profile", "laptop"], {}, "(from --profile)"),
    (["convert", "superposition", "--profile", "fast"], {}, "(from --profile)"),
    (["site", "--profile", "CPU"], {}, "(from --profile)"),
])
def test_posts_invalid_profile_from_any_source(args, env, source):
    err = one_line_error(command("llm_exploration.posts", *args, env=env), POSTS)
    assert source in err and VALID_PROFILES in err


def test_posts_bad_timeout():
    err = one_line_error(command("llm_exploration.posts", "run", "superposition", "--timeout", "0"), POSTS)
    assert "timeout=0 (from --timeout) is invalid: expected an integer >= 1." in err


def test_debug_shows_the_traceback():
    result = command("llm_exploration.posts", "--debug", "run", "nope")
    assert result.returncode == 1 and "Traceback" in result.stderr and "PostNotFoundError" in result.stderr


def test_a_bug_is_a_traceback_not_a_one_liner():
    def buggy(argv: list[str]) -> int:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        cli.run(buggy, "prog", [])


# --- the profile rule, end to end with the runner ----------------------------------------------

@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    (root / "_quarto.yml").write_text("project:\n  type: website\n")
    shutil.copytree(FIXTURES / "passing", root / "posts" / "passing")
    return root


@pytest.mark.parametrize("args, env, expected", [
    ([], {"LLM_EXPLORATION_PROFILE": "smoke"}, "smoke"),                 # the variable beats the cell
    (["--profile", "gpu"], {"LLM_EXPLORATION_PROFILE": "smoke"}, "gpu"),  # the flag beats the variable
    ([], {}, "cpu"),                                                     # the post's cell
])
def test_runner_profile_rule(project, args, env, expected):
    result = command("llm_exploration.posts", "run", "passing", *args, env=env, cwd=project)
    assert result.returncode == 0, result.stderr
    out = project / "posts" / "passing" / "_output"
    assert f"profile: {expected}\n" in (out / "run.txt").read_text()
    assert f"at profile {expected}." in (out / "index.html").read_text()  # what the kernel resolved


# --- every GRPOConfig field through the command line (in process: the same code path) ----------

FIELDS = [f.name for f in dataclasses.fields(GRPOConfig)]


def _bad_text(name: str) -> str:
    """A YAML value of the wrong type for the field: a mapping for list fields, else a list."""
    tp = typing.get_type_hints(GRPOConfig)[name]
    arms = typing.get_args(tp) or (tp,)
    return "{a: 1}" if any(typing.get_origin(a) is list for a in arms) else "[1, 2]"


@pytest.mark.parametrize("name", FIELDS)
def test_every_grpo_field_bad_on_the_command_line(name, capsys):
    assert grpo_main(["fit", "--config", SMOKE, "--set", f"{name}={_bad_text(name)}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{GRPO}{name}=") and "(from --set) is invalid: expected " in err
    assert err.count("\n") == 1
