"""User-facing errors: their message says what is wrong and what to do, no traceback needed."""

import errno

# What the machine, not the data, refuses: a full disk or quota, a read-only file system, a
# file or folder without permission. Named in one line; there is nothing to debug in our code.
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


class GlobalrepError(Exception):
    """Bad input or configuration, explained in the message."""


def environment_fault(error: BaseException, path: object = None) -> str | None:
    """One line for an OSError the environment caused (see ENVIRONMENT_ERRNOS), naming the file
    (``path`` when the error does not name one) and the cause; None for any other error."""
    if not isinstance(error, OSError) or error.errno not in ENVIRONMENT_ERRNOS:
        return None
    return (
        f"{error.filename or path or 'a file'}: {error.strerror} ({errno.errorcode[error.errno]}); "
        "free disk space or fix the permissions, then rerun snakemake"
    )
