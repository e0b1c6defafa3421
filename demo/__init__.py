"""The Textual demo: a thin view over engine/ (simulation and decision service)."""

from demo.app import DaydreamApp, build_app

__all__ = ["DaydreamApp", "build_app"]
