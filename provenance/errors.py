"""Exceptions raised by the pipeline stages, and the exit code each maps to.

Stages raise these; only the CLI turns them into a one-line message and an
exit code, so a script can tell bad input from a broken index.
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_FETCH = 4
EXIT_DECODE = 5
EXIT_INDEX = 6
EXIT_LOCKED = 7


class ProvenanceError(Exception):
    """Base class: a failure the user can act on, with a documented exit code."""

    exit_code = EXIT_INTERNAL


class BadInputError(ProvenanceError):
    """The source is missing, unreadable, of an unsupported kind, or over a limit."""

    exit_code = EXIT_BAD_INPUT


class FetchError(ProvenanceError):
    """A URL could not be downloaded (network, HTTP status, size cap, unsupported site)."""

    exit_code = EXIT_FETCH


class DecodeError(ProvenanceError):
    """The media exists but holds no decodable video frames."""

    exit_code = EXIT_DECODE


class IndexDatabaseError(ProvenanceError):
    """The index database is corrupt, locked, read-only, full or from a newer version."""

    exit_code = EXIT_INDEX


class LockedError(ProvenanceError):
    """Another run holds the lock (the feeds batch runs one at a time)."""

    exit_code = EXIT_LOCKED


EXIT_CODES_HELP = """\
Exit codes:
  0  the command ran (for check: with or without matches)
  1  internal error (a bug: please report it)
  2  usage error (unknown option, missing argument)
  3  bad input (missing file, not a video, unsupported URL scheme, over a limit)
  4  fetch failure (download failed, HTTP error, timeout, size cap)
  5  decode failure (no decodable video frames)
  6  index problem (corrupt, locked, read-only, full, newer schema)
  7  another watch run holds the lock
"""
