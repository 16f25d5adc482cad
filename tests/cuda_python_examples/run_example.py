"""Run one of NVIDIA's cuda-python examples unchanged:

    python run_example.py EXAMPLE.py [ARGUMENTS...]

The examples import ``cuda.bindings._example_helpers``, which the
cuda-bindings wheel does not ship; this runner puts our own implementation
(example_helpers.py, beside it) in ``sys.modules`` under that name and then
runs EXAMPLE.py as ``__main__`` with ARGUMENTS as its command line.
"""

import os
import runpy
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
HELPERS_NAME = "cuda.bindings._example_helpers"


def main(argv):
    if len(argv) < 2:
        print("usage: run_example.py EXAMPLE.py [ARGUMENTS...]", file=sys.stderr)
        return 2
    sys.path.insert(0, HERE)
    import cuda.bindings
    import example_helpers

    sys.modules[HELPERS_NAME] = example_helpers
    cuda.bindings._example_helpers = example_helpers
    del sys.path[0]
    example = os.path.abspath(argv[1])
    sys.argv = [example, *argv[2:]]
    runpy.run_path(example, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
