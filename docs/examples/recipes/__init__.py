"""Recipes for site code: receivers of the app's signals (docs/signals.md)."""
