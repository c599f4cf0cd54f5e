"""Installed command-line tools: ``htc-train`` (:mod:`htc_tools.cli.train`)."""
