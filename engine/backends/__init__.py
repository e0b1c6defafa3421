"""Backends: a batch of decision requests in, raw texts out.

``llamacpp`` and ``transformers`` load lazily so that importing the engine stays light.
"""

from engine.backends.base import Backend
from engine.backends.rules import RulesBackend

__all__ = ["Backend", "RulesBackend"]
