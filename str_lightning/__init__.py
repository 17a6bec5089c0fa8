"""str-lightning: STR and TCMR/VIBE-like video human pose and shape estimation on Lightning."""

__version__ = "0.1.0"
