"""robo: an RPA process registry and scheduler for public administrations."""

from robo.errors import (
    ApplicationException,
    BusinessException,
    DefinitionError,
    RoboError,
)

__version__ = "0.1.0"

__all__ = [
    "ApplicationException",
    "BusinessException",
    "DefinitionError",
    "RoboError",
    "__version__",
]
