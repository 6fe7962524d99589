"""Exploration at scale: specs of uncertainties, levers and outcomes; designs; sweeps on Dask; sensitivity,
optimisation and scenario discovery."""
