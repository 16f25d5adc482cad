"""guest_runtime installs into bare guests: it must import with the standard
library alone, never numpy, the server side, OpenStack libraries or CUDA
(a program brings NVIDIA's own bindings; the pool's driver is the C library)."""

import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]

# Top-level packages a bare guest does not have. Importing any of them from
# guest_runtime raises ImportError in the child process.
BLOCKED = [
    "orionx_nova", "orionx_agent", "oslo_config", "oslo_log", "oslo_messaging",
    "oslo_policy", "oslo_utils", "sqlalchemy", "alembic", "flask", "werkzeug",
    "waitress", "jsonschema", "keystonemiddleware", "keystoneauth1", "nova",
    "libvirt", "cuda", "pynvml", "psycopg2", "pymysql", "eventlet", "numpy",
]

CHILD = r"""
import importlib, importlib.abc, pkgutil, sys

BLOCKED = set(sys.argv[1].split(","))

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError("blocked in a bare guest: " + name)
        return None

sys.meta_path.insert(0, Blocker())
import guest_runtime
names = ["guest_runtime"]
for info in pkgutil.walk_packages(guest_runtime.__path__, "guest_runtime."):
    importlib.import_module(info.name)
    names.append(info.name)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print("imported", len(names), "modules; leaked:", leaked)
sys.exit(1 if leaked else 0)
"""


def test_guest_runtime_imports_with_the_standard_library_only():
    result = subprocess.run(
        [sys.executable, "-c", CHILD, ",".join(BLOCKED)],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "leaked: []" in result.stdout


def test_blocker_really_blocks():
    """The check above can fail: a module importing a blocked package is caught."""
    probe = "import guest_runtime, sqlalchemy"
    result = subprocess.run(
        [sys.executable, "-c", CHILD.replace("import guest_runtime\n", probe + "\n"),
         ",".join(BLOCKED)],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert result.returncode != 0
    assert "blocked in a bare guest: sqlalchemy" in result.stderr

