"""agent_runtime_core: not implemented yet; its issue builds it. Only the version is published so far."""

__version__ = "0.1.0"

__all__ = ["__version__"]
