"""How a run of a task ends early without failing it (none of these is a ``ProvisionError``)."""

from __future__ import annotations


class Aborted(Exception):
    """The task left our hands (deleted, failed elsewhere, taken over): stop quietly."""


class Shutdown(Exception):
    """The process is stopping: leave the task resumable."""
