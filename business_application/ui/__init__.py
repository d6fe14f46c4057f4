"""Operator-page helpers: the server-side pictures and what they read from the dependency map."""
