"""Every route, every role: the tables in routes/*.yaml (see declarative.py)."""

import pytest

from tests.api import declarative, pool

CASES = declarative.load_cases()


class _Pools:
    """One pool per YAML file, alive while that file's cases run."""

    def __init__(self, tmp_path_factory):
        self._factory = tmp_path_factory
        self._stem = None
        self._context = None
        self.pool = None
        self.variables = {}

    def for_file(self, stem):
        if stem != self._stem:
            self.close()
            self._context = pool.make_pool(self._factory.mktemp(stem))
            self.pool = self._context.__enter__()
            self.variables = dict(self.pool.ids, long_secret="s" * 1100)
            self._stem = stem
        return self.pool

    def close(self):
        if self._context is not None:
            self._context.__exit__(None, None, None)
        self._context = None
        self._stem = None


@pytest.fixture(scope="module")
def pools(tmp_path_factory):
    pools = _Pools(tmp_path_factory)
    yield pools
    pools.close()


@pytest.mark.parametrize(
    "stem,index,case", CASES, ids=["%s: %s" % (stem, case["name"]) for stem, _i, case in CASES])
def test_route(pools, stem, index, case):
    declarative.run_case(pools.for_file(stem), case, pools.variables)
