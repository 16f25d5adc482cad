"""Real NVIDIA GPUs through cuda-python (placeholder until written)."""


def unavailable_reason():
    try:
        from cuda.bindings import driver  # noqa: F401
    except ImportError:
        return "cuda-python is not installed"
    return "the cuda backend is not implemented yet"
