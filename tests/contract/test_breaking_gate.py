"""The breaking-change gate: `buf breaking` against the released contract image rejects a change
that would break a released client, and accepts additions and a new package version."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUF = Path(sys.executable).parent / "buf"
RELEASED = ROOT / "protos" / "released" / "modelruntime-v1.binpb"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "buf.yaml", tmp_path / "buf.yaml")
    shutil.copytree(ROOT / "protos" / "modelruntime", tmp_path / "protos" / "modelruntime")
    return tmp_path


def breaking(workspace: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BUF), "breaking", "--against", str(RELEASED)],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=60,
    )


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_the_current_contract_passes_the_gate(workspace: Path) -> None:
    result = breaking(workspace)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("file", "old", "new", "says"),
    [
        ("llm.proto", "string refusal = 7;", "string refusal_text = 7;", "changed name"),
        ("llm.proto", "int64 prompt_tokens = 1;", "int32 prompt_tokens = 1;", "changed type"),
        (
            "model_runtime_service.proto",
            "  // Counts the tokens a prompt would use with an LLM.\n"
            "  rpc GetLLMNumTokens(GetLLMNumTokensRequest) returns (GetLLMNumTokensResponse);\n",
            "",
            "GetLLMNumTokens",
        ),
    ],
)
def test_a_breaking_change_fails_the_gate(
    workspace: Path, file: str, old: str, new: str, says: str
) -> None:
    edit(workspace / "protos" / "modelruntime" / "v1" / file, old, new)
    result = breaking(workspace)
    assert result.returncode != 0
    assert says in result.stdout + result.stderr


def test_an_added_field_and_a_new_package_version_pass(workspace: Path) -> None:
    edit(
        workspace / "protos" / "modelruntime" / "v1" / "llm.proto",
        "  int64 reasoning_tokens = 16;\n",
        "  int64 reasoning_tokens = 16;\n  // Tokens written to the prompt cache.\n"
        "  int64 cache_write_tokens = 17;\n",
    )
    v2 = workspace / "protos" / "modelruntime" / "v2"
    v2.mkdir()
    (v2 / "thing.proto").write_text(
        'syntax = "proto3";\n\npackage modelruntime.v2;\n\n'
        "// A message of the next version.\nmessage Thing {\n"
        "  // Its name.\n  string name = 1;\n}\n"
    )
    result = breaking(workspace)
    assert result.returncode == 0, result.stdout + result.stderr
