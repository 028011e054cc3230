"""Session fixtures of the e2e suite (defined in story.py): one story of both pipelines that
test_pipelines.py checks and test_compare_page.py looks at."""

from tests.e2e.story import admin, batch_window, story, token_lifetime  # noqa: F401 - pytest fixtures
