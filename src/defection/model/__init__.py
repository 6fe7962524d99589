"""The model: one replicate of the daily loop, from parameters to daily series and outcomes."""
