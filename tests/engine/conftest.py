"""The engine fixture (``tests/engine_support.py``: one warmed pool per test module on the session
Ray) for every module here; the helpers stay imported from ``engine_support`` where they are used."""

from engine_support import engine  # noqa: F401 - the fixture, offered to this folder's modules
