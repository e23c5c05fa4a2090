"""python -m revad.demo: the seed's examples in the seed's order, and the committed pictures of
them (docs/*.svg) still show what the code computes."""
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

import revad
import revad._graph
import revad.demo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def numbers_after_equals(text):
    """The number ending each 'name = number' line, in order."""
    return [m[1] for line in text.splitlines()
            if (m := re.fullmatch(r"\s+\S.* = (-?[\d.]+)", line))]


def test_demo_prints_the_seeds_numbers_in_the_seeds_order(capsys):
    assert revad.demo.main(["--no-draw"]) == 0
    out = capsys.readouterr().out
    nums = numbers_after_equals(out)
    # Example 1: forward 80, 320, 324, 327; backward from z down to x and y; then w and b.
    assert nums[:12] == ["80", "320", "324", "327", "1", "1", "1", "4", "8", "81", "8", "81"]
    assert nums[12:14] == ["160", "1"]
    # Example 2, forward then backward, the CS231n figure's numbers.
    assert nums[14:22] == ["-2", "6", "4", "1", "-1", "0.368", "1.368", "0.731"]
    assert nums[22:30] == ["1", "-0.534", "-0.534", "-0.197", "0.197", "0.197", "0.197", "0.197"]
    assert "df/dw = (-0.197, -0.393, 0.197)" in out
    assert "df/dx = (0.393, -0.590)" in out
    assert "f = 0.731, df/dw = (-0.197, -0.393, 0.197), df/dx = (0.393, -0.590)" in out
    assert "the same gradients as the decomposed graph" in out
    assert out.index("Example 1") < out.index("Example 2")


def test_demo_draws_the_graphs(tmp_path, capsys):
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed")
    assert revad.demo.main(["--out", str(tmp_path / "imgs")]) == 0
    out = capsys.readouterr().out
    for stem in ("example1", "example2", "example2_sigmoid"):
        path = tmp_path / "imgs" / f"{stem}.svg"
        assert f"graph: wrote {path}" in out
        ET.parse(path)


def test_demo_without_graphviz_writes_dot_text(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert revad.demo.main(["--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "apt-get install graphviz" in captured.err
    for stem in ("example1", "example2", "example2_sigmoid"):
        assert (tmp_path / f"{stem}.dot").read_text().startswith("digraph revad {")


def test_demo_runs_as_a_module(tmp_path):
    # The revad these tests import (an installed wheel, or a built tree), from an empty folder.
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(revad.__file__)))
    proc = subprocess.run([sys.executable, "-m", "revad.demo", "--no-draw"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "dz/dw = 160" in proc.stdout


def demo_graphs():
    graphs = revad.demo.example1()[1] + revad.demo.example2()[1]
    return {stem: (y, names) for stem, y, names in graphs}


@pytest.mark.parametrize("stem", ["example1", "example2", "example2_sigmoid"])
def test_committed_pictures_show_what_the_code_computes(stem):
    # docs/*.svg are rendered by `python -m revad.demo --out docs`; rerun it when this fails.
    y, names = demo_graphs()[stem]
    dot = revad.to_dot(y, names, precision=6 if stem == "example1" else 3)
    want = sorted(part for label in re.findall(r'label="((?:[^"\\]|\\.)*)"', dot)
                  for part in label.replace('\\"', '"').split("\\n"))
    root = ET.parse(os.path.join(ROOT, "docs", f"{stem}.svg")).getroot()
    texts = sorted(t.text for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert texts == want
