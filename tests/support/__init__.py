"""Helpers shared by the project's tests (not tests themselves)."""
