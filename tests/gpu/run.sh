#!/bin/sh
# Runs the cuda backend's tests: the GPU-only ones here, and those
# parametrised by backend (data plane, QoS), on the GPU and against the
# stand-in driver. GPU parameters skip, saying why, without a GPU or
# cuda-python. Usage: tests/gpu/run.sh [pytest options]
set -e
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
exec timeout 300 "$PYTHON" -m pytest -q -rs tests/gpu tests/dataplane/test_cuda_backend.py tests/qos/test_cuda_qos.py "$@"
