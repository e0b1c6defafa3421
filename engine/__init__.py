"""The runtime a game embeds: prompts, backends, the decision service and the simulation.

Importing this package never imports torch, transformers, peft or trl.
"""

from engine.backends.base import Backend
from engine.backends.rules import RulesBackend, build_rule_motivation
from engine.cache import ResultCache
from engine.models import ModelSpecError, load_backend
from engine.prompt import PROMPT_VERSION, SYSTEM_MESSAGE, build_messages, build_training_messages
from engine.request import DecisionRequest, RawDecision, Sampling
from engine.service import DecisionService, QueueFull, decide, decide_async
from engine.stats import ServiceStats
from engine.ticket import DecisionResult, Ticket
from engine.validation import InvalidOutput, parse_motivation

__all__ = [
    "PROMPT_VERSION",
    "SYSTEM_MESSAGE",
    "Backend",
    "DecisionRequest",
    "DecisionResult",
    "DecisionService",
    "InvalidOutput",
    "ModelSpecError",
    "QueueFull",
    "RawDecision",
    "ResultCache",
    "RulesBackend",
    "Sampling",
    "ServiceStats",
    "Ticket",
    "build_messages",
    "build_rule_motivation",
    "build_training_messages",
    "decide",
    "decide_async",
    "load_backend",
    "parse_motivation",
]
