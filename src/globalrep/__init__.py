"""globalrep: how alignment changes an LLM's performance across dialects, languages and countries."""

__version__ = "0.1.0"
