"""The package version (one place; `earmark.__version__` re-exports it)."""

__version__ = "0.1.0"
