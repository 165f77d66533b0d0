"""LLM Exploration: the package behind the site's executable research posts."""

__version__ = "0.1.0"
