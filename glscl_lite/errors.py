"""Exceptions for problems the user can fix (bad input, missing files, wrong settings).

The CLI prints these as one-line errors instead of tracebacks.  Every message names the file,
row or key concerned and the reason.
"""
from __future__ import annotations


class UserError(Exception):
    """Base class of errors caused by input or settings rather than by a bug."""


class DataError(UserError, ValueError):
    """Malformed or missing data: annotation files, videos, caches."""


class OfflineError(UserError, RuntimeError):
    """Something must be downloaded but the network (or the model hub) is not reachable."""
