"""Reporting: test results read back from run directories (results CSV, CSV logger, offline
W&B files) and the paper's comparison tables. Imports the core only (docs/architecture.md)."""
