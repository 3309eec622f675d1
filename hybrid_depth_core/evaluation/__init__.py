"""Depth evaluation: pure metrics (`metrics`) and the drivers that run a predictor over datasets
(`drivers`)."""
