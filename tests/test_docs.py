"""The docs cannot drift: every fenced ```python block and every command in a fenced ```sh / ```bash
block of README.md and docs/*.md is run (or, where it cannot run in a test, checked).

- A python block runs as a script in a fresh interpreter (cwd: a temporary directory, the
  repository on PYTHONPATH) and must exit 0 within its timeout.
- An sh block runs line by line with bash in the repository root; `&&` chains run segment by
  segment. `python`, `python3`, `.venv/bin/python` and the like become this interpreter.
  Segments that create a virtual environment, install packages (the network) or run the whole
  test suite (this test is part of it) are not run; every `python -m MODULE` and
  `python FILE.py` is still checked to exist.
- A marker in an HTML comment on the line before a block says how to treat it:
    <!-- doc-test: skip REASON -->       not run (a fragment, a benchmark of minutes, a server, an
                                         optional dependency); a python block must still compile,
                                         an sh block's modules and files must still exist
    <!-- doc-test: args ARG ... -->      run the python block with these arguments
    <!-- doc-test: timeout SECONDS -->   a longer limit than the default
  Unfenced (indented) blocks are output and sketches, not run.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TIMEOUT = 60.0

_FENCE = re.compile(r"^```(\w*)\s*$")
_MARKER = re.compile(r"^<!--\s*doc-test:\s*(\w+)\s*(.*?)\s*-->\s*$")
_PY = re.compile(r"^(?:\S*/)?(?:python3?(?:\.\d+t?)?)$")
_NOT_RUN = (
    (re.compile(r"(^|\s)-m\s+venv(\s|$)"), "creates a virtual environment"),
    (re.compile(r"(^|[\s/])pip3?\s+install(\s|$)"), "installs packages from the network"),
    (re.compile(r"(^|\s)-m\s+pytest(\s|$)"), "runs the test suite, which includes this test"),
)


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    markers: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """blocks: the fenced python and sh blocks of path, each with the markers just before it."""
    out: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m.group(1)
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        markers: dict[str, str] = {}
        k = start - 1
        while k >= 0 and (mk := _MARKER.match(lines[k])):
            markers[mk.group(1)] = mk.group(2)
            k -= 1
        if lang in ("python", "sh", "bash"):
            out.append(Block(path, start + 1, lang, "\n".join(lines[start + 1 : j]) + "\n", markers))
        i = j + 1
    return out


ALL = [b for p in DOCS for b in blocks(p)]
PYTHON = [b for b in ALL if b.lang == "python"]
SHELL = [b for b in ALL if b.lang != "python"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MN_DEBUG", "MN_CHAOS", "MN_PROCS", "MN_TRACE")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _timeout(b: Block) -> float:
    return float(b.markers.get("timeout", TIMEOUT))


@pytest.mark.parametrize("block", PYTHON, ids=[b.id for b in PYTHON])
def test_python_block(block: Block, tmp_path: Path) -> None:
    # Compiled first, marked or not: a skipped fragment must still be Python (top-level await is
    # allowed: fragments show the inside of a goroutine).
    compile(block.text, block.id, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if "skip" in block.markers:
        pytest.skip(f"{block.id}: {block.markers['skip'] or 'marked skip'}")
    script = tmp_path / "block.py"
    script.write_text(block.text, encoding="utf-8")
    args = shlex.split(block.markers.get("args", ""))
    r = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=_timeout(block),
    )
    assert r.returncode == 0, f"{block.id} exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"


def _segments(block: Block) -> list[str]:
    out: list[str] = []
    for raw in block.text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        out += [seg.strip() for seg in line.split("&&") if seg.strip()]
    return out


def _check_exists(words: list[str], where: str) -> None:
    """_check_exists: the module of `python -m MODULE` or the file of `python FILE` is there."""
    if not words or not _PY.match(words[0]):
        return
    if len(words) > 2 and words[1] == "-m":
        mod = words[2]
        assert importlib.util.find_spec(mod) is not None, f"{where}: no module {mod!r}"
    elif len(words) > 1 and words[1].endswith(".py"):
        assert (ROOT / words[1]).exists(), f"{where}: no file {words[1]!r}"


@pytest.mark.parametrize("block", SHELL, ids=[b.id for b in SHELL])
def test_shell_block(block: Block) -> None:
    segs = _segments(block)
    assert segs, f"{block.id}: an empty shell block"
    run: list[list[str]] = []
    for seg in segs:
        words = shlex.split(seg, comments=True)
        _check_exists(words, block.id)
        if "skip" in block.markers or any(rx.search(seg) for rx, _ in _NOT_RUN):
            continue
        if words and _PY.match(words[0]):
            words[0] = sys.executable
        run.append(words)
    if not run:
        pytest.skip(f"{block.id}: {block.markers.get('skip') or 'nothing in it can run in a test'} (modules checked)")
    for words in run:
        r = subprocess.run(words, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=_timeout(block))
        assert r.returncode == 0, f"{block.id}: {shlex.join(words)} exited {r.returncode}:\n{r.stderr[-4000:]}"


def test_every_doc_was_read() -> None:
    """The collection itself: the docs exist and the known runnable examples are among the blocks."""
    assert (ROOT / "README.md") in DOCS and len(DOCS) > 3
    assert any(b.path.name == "README.md" and b.lang == "python" for b in ALL)
