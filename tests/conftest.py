"""Fixtures for every test: see the modules of tests/fixtures."""

pytest_plugins = ["tests.fixtures.services", "tests.fixtures.app", "tests.fixtures.api",
                  "tests.fixtures.fakes", "tests.fixtures.engine", "tests.fixtures.browser"]
