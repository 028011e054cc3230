import pytest

from tormenta import settings


@pytest.fixture
def s(tmp_path, monkeypatch):
    """Settings whose home is a fresh temporary folder."""
    monkeypatch.setenv("TORMENTA_HOME", str(tmp_path))
    settings.load.cache_clear()
    yield settings.load()
    settings.load.cache_clear()


@pytest.fixture
def fresh_settings():
    """Settings read again from the environment before and after the test (load() is cached)."""
    settings.load.cache_clear()
    yield
    settings.load.cache_clear()
