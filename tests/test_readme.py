"""The README's code runs and prints what it says, so the front page cannot drift from the code.

Every ```python block is executed on its own (each is meant to be copied and pasted). What a
block prints is written in it as comments: a comment after a ``print(...)`` on the same line,
or full-line comments right below a ``print(...)`` line, one per printed line. Numbers in the
output are compared to 6 significant digits (finite differences differ in the last ones from
one libm to another); everything else exactly.
"""
import contextlib
import io
import math
import os
import re
import shutil
import tokenize

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
_NUMBER = re.compile(r"(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)")


def python_blocks(text):
    """(first line number, source) of each ```python block."""
    blocks, lines = [], text.splitlines()
    start = None
    for i, line in enumerate(lines):
        if start is None and line.strip() == "```python":
            start = i + 1
        elif start is not None and line.strip() == "```":
            blocks.append((start + 1, "\n".join(lines[start:i]) + "\n"))
            start = None
    return blocks


def expected_output(source):
    """The printed lines a block announces in its comments."""
    lines = source.splitlines()
    comments = {}  # line index -> (comment text, whole line is a comment)
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            row, col = tok.start
            text = tok.string[2:] if tok.string.startswith("# ") else tok.string[1:]
            comments[row - 1] = (text, not lines[row - 1][:col].strip())
    out, after_print = [], False
    for i, line in enumerate(lines):
        comment = comments.get(i)
        if comment and comment[1]:  # a full-line comment
            if after_print:
                out.append(comment[0])
            continue
        after_print = line.strip().startswith("print(")
        if after_print and comment:
            out.append(comment[0])
    return out


def same_line(got, want):
    g, w = _NUMBER.split(got.rstrip()), _NUMBER.split(want.rstrip())
    if len(g) != len(w):
        return False
    for k, (a, b) in enumerate(zip(g, w, strict=True)):
        if k % 2 == 0:
            if a != b:
                return False
        elif not math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-9):
            return False
    return True


with open(README, encoding="utf-8") as _fh:
    TEXT = _fh.read()
BLOCKS = python_blocks(TEXT)


def test_the_readme_has_checked_examples():
    assert len(BLOCKS) >= 5
    assert sum(len(expected_output(src)) for _, src in BLOCKS) >= 10


@pytest.mark.parametrize("line, source", BLOCKS, ids=[f"README.md:{n}" for n, _ in BLOCKS])
def test_readme_block_runs_and_prints_what_it_says(line, source, tmp_path, monkeypatch):
    if "revad.draw(" in source and shutil.which("dot") is None:
        if os.environ.get("CI"):
            pytest.fail("Graphviz's dot is missing in CI: .ci/run should install graphviz")
        pytest.skip("Graphviz's dot is not installed")
    monkeypatch.chdir(tmp_path)  # whatever a block writes lands here
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(source, f"README.md:{line}", "exec"), {"__name__": "__readme__"})
    got = buf.getvalue().splitlines()
    want = expected_output(source)
    assert len(got) == len(want), f"printed {got}, the README says {want}"
    for g, w in zip(got, want, strict=True):
        assert same_line(g, w), f"printed {g!r}, the README says {w!r}"


def test_the_comment_convention():
    src = 'x = 1  # not output\nprint(x)  # 1\nprint(2)\n# 2\ny = 3\n# not output either\n'
    assert expected_output(src) == ["1", "2"]
    assert same_line("err 1.0000001e-11 ok", "err 1e-11 ok")
    assert not same_line("err 0.56", "err 0.57") and not same_line("a b", "a c")


def test_images_the_readme_shows_exist():
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", TEXT)
    assert {"docs/example1.svg", "docs/example2.svg", "docs/benchmark_peers.png",
            "docs/benchmark_modes.png", "docs/benchmark_accuracy.png"} <= set(images)
    for path in images:
        assert os.path.isfile(os.path.join(ROOT, path)), path
