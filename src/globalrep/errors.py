"""User-facing errors: their message says what is wrong and what to do, no traceback needed."""


class GlobalrepError(Exception):
    """Bad input or configuration, explained in the message."""
