"""Project-wide pytest set-up: the lab fixtures live in a plugin of the lab."""

pytest_plugins = ["portal.lab.pytest_plugin", "portal.tests.redis_fixture"]
