"""Run one command and report its wall time and peak RSS as JSON.

``python benchmarks/_measure.py RESULT.json STDOUT_FILE TIMEOUT_S -- CMD ARG...``

A fresh process per measurement, so ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` is the peak
resident set of the command (or of its largest descendant, e.g. tshark under pyshark) and
nothing else. On Linux ``ru_maxrss`` is in KiB.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def main() -> int:
    """Run the command given after ``--`` and write the measurement."""
    result_path, stdout_path, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    cmd = sys.argv[sys.argv.index("--") + 1:]
    t0 = time.perf_counter()
    with open(stdout_path, "wb") as out:
        try:
            p = subprocess.run(cmd, stdout=out, stderr=subprocess.PIPE, check=False,
                               timeout=timeout)
            rc, err = p.returncode, p.stderr
        except subprocess.TimeoutExpired:
            rc, err = 124, f"timed out after {timeout:.0f} s".encode()
        except OSError as e:
            rc, err = 127, str(e).encode()
    wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(result_path, "w", encoding="utf-8") as f:
        json.dump({
            "rc": rc, "wall": wall, "maxrss_kb": ru.ru_maxrss,
            "user": ru.ru_utime, "sys": ru.ru_stime,
            "stderr": err.decode("utf-8", "replace")[-2000:],
        }, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
