"""Fixtures for these tests live in models_support.py (a unique name, so test modules can import its
helpers without colliding with the other folders' conftest modules)."""

from models_support import *  # noqa: F401,F403
