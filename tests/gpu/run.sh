#!/bin/sh
# Runs the cuda backend's tests, QoS included (they skip, saying why,
# without a GPU or cuda-python), and its QoS code against the stand-in
# driver as well. Usage: tests/gpu/run.sh [pytest options]
set -e
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
exec timeout 300 "$PYTHON" -m pytest -q -rs tests/gpu tests/qos/test_cuda_qos_fake.py "$@"
