"""Ledger and budgets: an append-only record of usage, and limits checked against it."""

from __future__ import annotations

from .budget import (
    Budget,
    BudgetCheck,
    BudgetDecision,
    BudgetExceededError,
    Reservation,
    Window,
    evaluate_budgets,
    window_start,
)
from .events import LedgerEvent, LedgerEventType, UsageRecord
from .ledger import Ledger, LedgerContext
from .writer import InMemoryLedgerWriter, LedgerWriter

__all__ = [
    "Ledger",
    "LedgerEvent",
    "LedgerEventType",
    "LedgerWriter",
    "InMemoryLedgerWriter",
    "Budget",
    "BudgetDecision",
    "UsageRecord",
    "BudgetExceededError",
    "BudgetCheck",
    "Reservation",
    "Window",
    "LedgerContext",
    "evaluate_budgets",
    "window_start",
]
