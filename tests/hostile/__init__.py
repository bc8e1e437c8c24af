"""Hostile input: a generated corpus of bad media, bad URLs and bad indexes (issue 6)."""
