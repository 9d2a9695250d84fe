"""Project-wide pytest set-up: the lab fixtures live in a plugin of the lab."""

pytest_plugins = ["portal.lab.pytest_plugin", "portal.tests.redis_fixture"]


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _default_language_between_tests():
    """Every test starts in the default language.

    Django keeps the language a request activated (LocaleMiddleware) on the
    thread after the test client returns, so one test that asks for Spanish
    would otherwise make the next test's messages Spanish.
    """
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()
