"""The package version, in a leaf module so any module can import it without a cycle.

``pyproject.toml`` reads it from here (hatch's version source), so it is written once.
"""

__version__ = "0.1.0"
