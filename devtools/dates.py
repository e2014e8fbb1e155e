"""`make test-dates`: the unit and handler suites run at the dates that break code reading the wall clock.

Each run moves two clocks apart:

- the **process clock**, with Debian's `faketime` (libfaketime: `datetime.now`, `time.time` and
  the monotonic clocks all move): a test or a module that reads the wall where it should read its
  injected clock sees another date than the test's and fails;
- the **tests' own clock** (`CW_TEST_NOW`, read by `tests/clocks.py`): every unit and handler test
  starts from that instant, so the logic itself runs at a month's last seconds, a leap day, a
  year's end.

The dates, each used once for each clock (the tests' clock takes the next date of the list):

    2026-12-31 15:59:58 UTC   the last seconds of a month (and a year) in Asia/Shanghai
    2026-12-31 16:00:02 UTC   just after it
    2028-02-29 12:00:00 UTC   a leap day
    2027-11-28 12:00:00 UTC   a year after the fixtures' date (2026-11-28)

The end-to-end suite keeps the real clock (it runs a real broker whose timestamps are the wall's).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

DATES = ("2026-12-31T15:59:58Z", "2026-12-31T16:00:02Z", "2028-02-29T12:00:00Z", "2027-11-28T12:00:00Z")


def faketime() -> str:
    """The `faketime` command, installed from Debian's packages when missing (as root)."""
    found = shutil.which("faketime")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        sys.exit("faketime not found: install Debian's package (`sudo apt-get install -y faketime`)")
    print("installing Debian's faketime (first run only) ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", "faketime"]):
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            sys.exit(f"`{' '.join(command)}` failed:\n{(result.stdout + result.stderr)[-2000:]}")
    return shutil.which("faketime") or sys.exit("faketime is still missing after apt-get install faketime")


def runs(dates: tuple[str, ...] = DATES) -> list[tuple[str, str]]:
    """(process clock, tests' clock) per run: each date once as each, never both in one run."""
    return [(date, dates[(i + 1) % len(dates)]) for i, date in enumerate(dates)]


def main(argv: list[str]) -> int:
    command = faketime()
    extra = argv[1:]
    results: list[tuple[str, str, int, float]] = []
    for wall, tests_now in runs():
        began = time.monotonic()
        print(f"=== process clock {wall} (faketime), tests' clock {tests_now} (CW_TEST_NOW)", flush=True)
        env = {**os.environ, "TZ": "UTC", "CW_TEST_NOW": tests_now}
        stamp = wall.replace("T", " ").removesuffix("Z")
        pytest = [sys.executable, "-m", "pytest", "-q", "-m", "unit or handlers", "-p", "no:cacheprovider", *extra]
        code = subprocess.run([command, stamp, *pytest], env=env).returncode
        results.append((wall, tests_now, code, time.monotonic() - began))
    print("\nprocess clock            tests' clock             result   seconds")
    for wall, tests_now, code, seconds in results:
        print(f"{wall:<24} {tests_now:<24} {'passed' if code == 0 else f'FAILED ({code})':<8} {seconds:7.1f}")
    return 0 if all(code == 0 for _, _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
