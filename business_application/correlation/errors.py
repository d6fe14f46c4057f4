"""Exceptions raised by the correlation package, whichever backend runs.

The compiled core imports these classes and raises them, so callers catch one hierarchy.
"""

__all__ = ('BackendUnavailableError', 'CorrelationError', 'GraphError', 'ScenarioError')


class CorrelationError(Exception):
    """Base class of every error the correlation package raises."""


class GraphError(CorrelationError, ValueError):
    """The dependency map handed to a backend is malformed; the message names the offending index."""


class BackendUnavailableError(CorrelationError, ImportError):
    """The requested engine backend cannot be loaded (for example, the compiled core is not built)."""


class ScenarioError(CorrelationError, ValueError):
    """A scenario file is malformed; the message gives the file, the path inside it and the reason."""
