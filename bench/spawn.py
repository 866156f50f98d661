"""Run one command; print its exit code, wall time and peak RSS as JSON.

    python bench/spawn.py STDOUT_FILE STDERR_FILE TIMEOUT_SECONDS COMMAND [ARG...]

bench.py starts every measured process through this small helper rather than
directly. On Linux a child's `ru_maxrss` (from `os.wait4`) is the high-water mark of
the process across `exec`, so it starts at the RSS of the process that forked it:
spawned from bench.py (drivers loaded, ~40 MB) a 20 MB baseline would report 40 MB.
Forked from this helper (~10 MB, less than any Python process it starts) the figure
is the measured program's own peak. The wall time runs from spawn to exit, so it
includes the measured program's start-up but not this helper's.
"""

import json
import os
import signal
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    stdout_path, stderr_path, timeout, *command = argv[1:]
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err)
        signal.signal(signal.SIGALRM, lambda *_: process.kill())
        signal.alarm(max(1, round(float(timeout))))
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        signal.alarm(0)
    process.returncode = os.waitstatus_to_exitcode(status)
    result = {"returncode": process.returncode, "wall": wall, "maxrss_kib": usage.ru_maxrss}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
