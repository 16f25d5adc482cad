"""The controller, REST API and agent fixtures of the agent tests."""

from tests.agent.conftest import controller, pool  # noqa: F401
