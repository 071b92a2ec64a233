"""The API fixtures of tests/integration (v1/v2 events, api_with, log_lines), for the corpus too."""

from integration.conftest import api, api_with, app, log_lines, powertools_env  # noqa: F401  (fixtures)
