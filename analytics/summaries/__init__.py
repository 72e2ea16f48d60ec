"""Typed results of each report kind, built from counts (no Django import)."""
