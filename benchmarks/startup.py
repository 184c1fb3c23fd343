"""pytest start-up with the plugin installed and no kp test selected, against ``-p no:kpmodel``.

    .venv/bin/python benchmarks/startup.py             # 15 rounds
    .venv/bin/python benchmarks/startup.py --rounds 30

A folder with one plain test; ``python -m pytest -q -p no:cacheprovider`` run in it with the
plugin and with ``-p no:kpmodel``, alternately, ``--rounds`` times each (after one untimed
run of each, which writes the bytecode caches). The overhead is the median of the per-round
differences (each pair runs back to back, so a busy spell hits both), printed beside both
medians; wall clock and the child's CPU time (user + system, steadier on a shared machine).

Bytecode caching is on for the children as in a default Python install (this project's
machines set PYTHONDONTWRITEBYTECODE=1, which makes every run recompile every module and
would measure the compiler). Target: the plugin adds < 50 ms.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed_pytest(folder: Path, args: list[str], expect: str,
                 env_extra: dict[str, str] | None = None) -> tuple[float, float]:  # fmt: skip
    """(wall, CPU) seconds of one ``pytest -q ARGS`` process in ``folder``; exits when it fails
    or its summary lacks ``expect``. Bytecode caching on, as in a default Python install (this
    project's machines set PYTHONDONTWRITEBYTECODE=1: every run would recompile and
    assertion-rewrite every module)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE",
                                                            "PYTEST_ADDOPTS")}  # fmt: skip
    env.update(env_extra or {})
    cmd = [sys.executable, "-m", "pytest", "-q", *args]
    cpu, t0 = _child_cpu(), time.perf_counter()
    done = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, _child_cpu() - cpu
    if done.returncode != 0 or expect not in done.stdout:
        raise SystemExit(f"pytest {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return wall, cpu


def run(folder: Path, *extra: str) -> tuple[float, float]:
    """(wall, CPU) seconds of one pytest process in ``folder``."""
    return timed_pytest(folder, ["-p", "no:cacheprovider", *extra], "1 passed")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kp-startup-") as tmp:
        folder = Path(tmp)
        (folder / "test_plain.py").write_text("def test_plain():\n    pass\n")
        run(folder), run(folder, "-p", "no:kpmodel")  # bytecode caches written
        with_plugin, without, diff_wall, diff_cpu = [], [], [], []
        for _ in range(args.rounds):
            a, b = run(folder), run(folder, "-p", "no:kpmodel")
            with_plugin.append(a)
            without.append(b)
            diff_wall.append(a[0] - b[0])
            diff_cpu.append(a[1] - b[1])

    def med(xs: list[tuple[float, float]], i: int) -> float:
        return statistics.median(x[i] for x in xs) * 1000

    print(f"pytest start-up, no kp test selected, {args.rounds} alternating rounds, python "
          f"{sys.version.split()[0]} (ms, median)")  # fmt: skip
    print(f"{'':<28} {'wall':>8} {'CPU':>8}")
    print(f"{'with the plugin':<28} {med(with_plugin, 0):8.0f} {med(with_plugin, 1):8.0f}")
    print(f"{'-p no:kpmodel':<28} {med(without, 0):8.0f} {med(without, 1):8.0f}")
    ow, oc = statistics.median(diff_wall) * 1000, statistics.median(diff_cpu) * 1000
    print(f"{'overhead (median of pairs)':<28} {ow:8.0f} {oc:8.0f}   (target < 50 ms)")


if __name__ == "__main__":
    main()
