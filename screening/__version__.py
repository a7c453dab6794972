"""The package version, in a module of its own (as httpx keeps it) so that the engine and the
callbacks can stamp it on what they produce without importing the package root, which
imports them."""

__all__ = ["__version__"]

__version__ = "0.1.0"
