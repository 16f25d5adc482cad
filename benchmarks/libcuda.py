"""The C client library over shared memory: benchmarks/dataplane.py's shm
route (kept under this name for those who knew it).

Usage: python benchmarks/libcuda.py [--quick]
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import dataplane  # noqa: E402

if __name__ == "__main__":
    sys.exit(dataplane.main(sys.argv[1:] + ["--routes", "shm"]))
