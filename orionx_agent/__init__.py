"""OrionX host agent and GPU server: the pool's data plane on each host."""
