"""Fixtures for these tests live in pipeline_support.py (a unique name, so test modules can import its
helpers without colliding with the other folders' conftest modules)."""

from pipeline_support import *  # noqa: F401,F403
