"""Runtime checks of an artifact in a fresh environment (the harness itself is stdlib-only)."""
