"""Calibration and validation against the historical case library."""
