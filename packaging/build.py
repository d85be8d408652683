"""Build the standalone MachineLabs Desktop bundle with PyInstaller, then check it.

    pip install '.[packaging]'          # the app's dependencies plus PyInstaller
    python packaging/build.py           # -> dist/mlabs-desktop/ (macOS: dist/MachineLabs Desktop.app)

Options:
    --out DIR        put the bundle in DIR/dist and PyInstaller's work files in DIR/work
                     (default: dist/ and build/pyinstaller/ in the checkout, both git-ignored)
    --no-trim        keep everything PyInstaller collects (to measure what trimming saves)
    --skip-self-test build only
    --self-test-only run the self-test of an existing bundle

Steps: (1) icons are checked against their SVG source, (2) PyInstaller runs the
spec packaging/mlabs-desktop.spec, (3) every data file listed in
packaging/bundle_data.py is checked to be in the bundle, (4) the bundle's
``--self-test`` runs offscreen (QT_QPA_PLATFORM=offscreen, a throwaway
MLABS_DESKTOP_HOME): it opens the main window, builds a tiny model and stylizes
a bundled sample photo. A failing step fails the build (exit status 1). The
bundle size and the build time are printed at the end, and written to
``<dist>/build-report.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bundle_data as bd  # noqa: E402

ROOT = bd.ROOT
SPEC = HERE / "mlabs-desktop.spec"
SELF_TEST_TIMEOUT_S = 900   # imports TensorFlow from a fresh bundle: slow on a cold disk
# Log lines that mean the self-test passed only because a part of the app was left out.
BAD_LOG_LINES = ("view unavailable", "uncaught exception")


class BuildError(Exception):
    pass


def say(text: str) -> None:
    print(f"[build] {text}", flush=True)


def bundle_dir(dist: Path) -> Path:
    """The folder to ship (the .app on macOS)."""
    if sys.platform == "darwin":
        return dist / f"{bd.APP_NAME}.app"
    return dist / bd.EXE_NAME


def executable(dist: Path) -> Path:
    if sys.platform == "darwin":
        return bundle_dir(dist) / "Contents" / "MacOS" / bd.EXE_NAME
    return dist / bd.EXE_NAME / (bd.EXE_NAME + (".exe" if sys.platform == "win32" else ""))


def internal_dir(dist: Path) -> Path:
    """Where PyInstaller puts everything but the executable: the bundle's sys._MEIPASS."""
    if sys.platform == "darwin":
        return bundle_dir(dist) / "Contents" / "Frameworks"
    return dist / bd.EXE_NAME / "_internal"


def folder_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            file = Path(root, name)
            if not file.is_symlink():
                total += file.stat().st_size
    return total


def largest_items(path: Path, depth: int = 2, count: int = 15) -> list[tuple[str, int]]:
    """The biggest folders/files ``depth`` levels below ``path`` (what to look at when trimming)."""
    sizes: dict[str, int] = {}
    for root, _dirs, files in os.walk(path):
        for name in files:
            file = Path(root, name)
            if file.is_symlink():
                continue
            rel = file.relative_to(path).parts
            key = "/".join(rel[:depth])
            sizes[key] = sizes.get(key, 0) + file.stat().st_size
    return sorted(sizes.items(), key=lambda kv: -kv[1])[:count]


def mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB"


def check_icons() -> None:
    missing = [p for p in __import__("make_icons").output_files() if not p.exists()]
    if missing:
        raise BuildError(f"icons missing: {', '.join(p.name for p in missing)}; run python packaging/make_icons.py")


def run_pyinstaller(dist: Path, work: Path, trim: bool) -> None:
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        raise BuildError("PyInstaller is not installed: pip install '.[packaging]'") from None
    env = dict(os.environ, MLABS_BUNDLE_TRIM="1" if trim else "0")
    command = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
               "--distpath", str(dist), "--workpath", str(work), str(SPEC)]
    say("running " + " ".join(command[2:]))
    if subprocess.run(command, cwd=ROOT, env=env).returncode != 0:
        raise BuildError("PyInstaller failed (its messages are above)")


def check_data_files(dist: Path) -> None:
    internal = internal_dir(dist)
    missing = [src for src, _dest in bd.data_files() if not (internal / src).is_file()]
    if missing:
        raise BuildError(f"data files missing from the bundle: {', '.join(missing)}")
    say(f"all {len(bd.data_files())} data files are in the bundle")


def run_self_test(dist: Path) -> str:
    exe = executable(dist)
    if not exe.is_file():
        raise BuildError(f"no executable at {exe}")
    with tempfile.TemporaryDirectory(prefix="mlabs-bundle-test-") as home:
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", MLABS_DESKTOP_HOME=home)
        env.pop("KERAS_BACKEND", None)
        say(f"running {exe} --self-test")
        started = time.monotonic()
        try:
            proc = subprocess.run([str(exe), "--self-test"], env=env, capture_output=True, text=True,
                                  timeout=SELF_TEST_TIMEOUT_S, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise BuildError(f"the self-test did not finish in {SELF_TEST_TIMEOUT_S} s") from None
        seconds = time.monotonic() - started
        output = (proc.stdout + proc.stderr).strip()
        log_file = Path(home, "logs", "mlabs-desktop.log")
        log_text = log_file.read_text(encoding="utf-8", errors="replace") if log_file.exists() else ""
    # A windowed Windows/macOS build has no stdout: the exit status and the log are the answer.
    for line in output.splitlines():
        print(f"    | {line}")
    if proc.returncode != 0:
        tail = "\n".join(log_text.splitlines()[-30:])
        raise BuildError(f"the bundle's self-test failed (exit status {proc.returncode}); log:\n{tail}")
    bad = [line for line in log_text.splitlines() if any(b in line for b in BAD_LOG_LINES)]
    if bad:
        raise BuildError("the self-test passed but the log shows missing parts:\n" + "\n".join(bad))
    say(f"self-test passed in {seconds:.0f} s")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the MachineLabs Desktop bundle with PyInstaller.")
    parser.add_argument("--out", type=Path, help="output folder (default: dist/ and build/pyinstaller/ here)")
    parser.add_argument("--no-trim", action="store_true", help="do not exclude unused modules and files")
    parser.add_argument("--skip-self-test", action="store_true", help="build only")
    parser.add_argument("--self-test-only", action="store_true", help="only run an existing bundle's self-test")
    args = parser.parse_args(argv)

    out = args.out.resolve() if args.out else None
    dist = out / "dist" if out else ROOT / "dist"
    work = out / "work" if out else ROOT / "build" / "pyinstaller"
    report: dict = {"app": bd.APP_NAME, "version": bd.VERSION, "platform": platform.platform(),
                    "python": platform.python_version(), "trimmed": not args.no_trim}
    started = time.monotonic()
    try:
        if not args.self_test_only:
            check_icons()
            if bundle_dir(dist).exists():
                shutil.rmtree(bundle_dir(dist))
            run_pyinstaller(dist, work, trim=not args.no_trim)
            report["build_seconds"] = round(time.monotonic() - started, 1)
            check_data_files(dist)
        if not args.skip_self_test:
            test_started = time.monotonic()
            report["self_test_output"] = run_self_test(dist)
            report["self_test_seconds"] = round(time.monotonic() - test_started, 1)
    except BuildError as exc:
        say(f"FAILED: {exc}")
        return 1

    size = folder_size(bundle_dir(dist))
    largest = largest_items(internal_dir(dist))
    report.update(bundle=str(bundle_dir(dist)), bundle_bytes=size,
                  largest=[{"path": p, "bytes": n} for p, n in largest])
    trimmed_list = work / SPEC.stem / "trimmed-files.txt"   # PyInstaller's workpath for this spec
    if not args.no_trim and trimmed_list.exists() and not args.self_test_only:
        rows = [line.split("\t", 1) for line in trimmed_list.read_text(encoding="utf-8").splitlines() if line]
        report["trimmed_files"] = len(rows)
        report["trimmed_bytes"] = sum(int(n) for n, _ in rows)
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "build-report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")

    say(f"bundle: {bundle_dir(dist)}")
    say(f"bundle size: {mb(size)} ({size:,} bytes)")
    if "trimmed_bytes" in report:
        say(f"trimmed after analysis: {report['trimmed_files']} files, {mb(report['trimmed_bytes'])}")
    if "build_seconds" in report:
        say(f"build time: {report['build_seconds']:.0f} s (PyInstaller); "
            f"total with checks: {time.monotonic() - started:.0f} s")
    say("largest parts: " + ", ".join(f"{p} {mb(n)}" for p, n in largest[:8]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
