"""The complete code samples the documentation shows (``literalinclude``); the tests import
and run each one (tests/test_docs.py, tests/test_recipes.py, tests/browser/)."""
