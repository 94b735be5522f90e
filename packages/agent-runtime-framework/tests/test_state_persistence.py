"""State round-trips: to_dict/from_dict, older stored versions, core stores, and two processes."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from agent_runtime_core.state import InMemoryStateStore, SQLiteStateStore
from agent_runtime_framework import (
    BaseJourneyState,
    ConversationStore,
    InMemoryStore,
    MemoryManager,
    StateDataError,
    StateStore,
)

SCRIPT = Path(__file__).with_name("seed_onboarding.py")


class Stage(StrEnum):
    START = "start"
    ITEMS = "items"
    DONE = "done"


@dataclass
class CartState(BaseJourneyState[Stage]):  # relies on the default to_dict/from_dict
    step: Stage = Stage.START
    items: list[str] = field(default_factory=list)
    coupon: str | None = None

    def is_complete(self) -> bool:
        return self.step is Stage.DONE


def test_seed_state_round_trips(seed: ModuleType) -> None:
    state = seed.OnboardingState(step=seed.OnboardingStep.COLLECT_EMAIL, name="Ann", email="a@b.c")
    data = json.loads(json.dumps(state.to_dict()))
    assert seed.OnboardingState.from_dict(data) == state


def test_default_serialisation_round_trips_enums_and_lists() -> None:
    state = CartState(step=Stage.ITEMS, items=["tea", "cup"], coupon="X")
    data = state.to_dict()
    assert data == {"step": "items", "items": ["tea", "cup"], "coupon": "X"}
    assert CartState.from_dict(json.loads(json.dumps(data))) == state


def test_older_state_dicts_get_defaults_for_missing_fields(seed: ModuleType) -> None:
    # Written before "items"/"coupon" (and "email" in the seed's state) existed.
    assert CartState.from_dict({"step": "items"}) == CartState(step=Stage.ITEMS)
    assert CartState.from_dict({}) == CartState()
    # Keys from a newer version are ignored rather than crashing an old worker.
    assert CartState.from_dict({"step": "done", "loyalty": 3}).step is Stage.DONE
    assert seed.OnboardingState.from_dict({"step": "collect_email", "name": "Ann"}).email == ""


def test_bad_state_data_raises_state_data_error() -> None:
    with pytest.raises(StateDataError, match=r"CartState.step: 'checkout' is not a Stage \(known: 'start'"):
        CartState.from_dict({"step": "checkout"})
    with pytest.raises(StateDataError, match="expects a dict"):
        CartState.from_dict(["start"])  # type: ignore[arg-type]

    @dataclass
    class Strict(BaseJourneyState[Stage]):
        step: Stage
        owner: str = ""

        def is_complete(self) -> bool:
            return False

    with pytest.raises(StateDataError, match="no 'step' and it has no default"):
        Strict.from_dict({"owner": "x"})


def test_non_dataclass_states_must_implement_serialisation() -> None:
    class Plain(BaseJourneyState[str]):
        step = "a"

        def is_complete(self) -> bool:
            return False

    with pytest.raises(NotImplementedError, match="implement to_dict"):
        Plain().to_dict()


async def test_memory_manager_on_sqlite_round_trips(tmp_path: Path) -> None:
    store = SQLiteStateStore(db_path=tmp_path / "m.db")
    manager = MemoryManager.from_backend(store)
    await manager.save_state("c", "cart", CartState(step=Stage.ITEMS, items=["tea"]))
    await manager.conversation_store.append_messages("c", [{"role": "user", "content": "tea"}])
    await store.close()
    again = MemoryManager.from_backend(SQLiteStateStore(db_path=tmp_path / "m.db"))
    loaded = await again.load_context("c", "cart")
    assert CartState.from_dict(loaded.state or {}) == CartState(step=Stage.ITEMS, items=["tea"])
    assert loaded.messages == [{"role": "user", "content": "tea"}]
    await again.state_store.backend.close()


async def test_stores_check_their_input() -> None:
    with pytest.raises(TypeError, match="agent_runtime_core StateStore"):
        StateStore(backend={})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="BaseJourneyState or a dict"):
        await StateStore().save("c", "a", ["step"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="JSON"):
        await ConversationStore().save_messages("c", [{"role": "user", "content": object()}])
    shared = InMemoryStateStore()
    a, b = StateStore(shared), ConversationStore(shared)
    await a.save("c", "x", {"step": "s"})
    await b.save_messages("c", [{"role": "user", "content": "hi"}])
    assert await a.load("c", "x") == {"step": "s"} and await b.get_messages("c") != []


async def test_in_memory_store_copies_values() -> None:
    store: InMemoryStore[dict[str, Any]] = InMemoryStore()
    value = {"items": ["a"]}
    await store.set("k", value)
    value["items"].append("b")
    got = await store.get("k")
    assert got == {"items": ["a"]}
    await store.delete("k")
    assert await store.get("k") is None and len(store) == 0


def turn(db: Path, text: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(db), "conv-7", text], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout))


@pytest.mark.slow
def test_a_conversation_continued_in_a_new_process_resumes_at_its_step(tmp_path: Path) -> None:
    db = tmp_path / "journeys.db"
    first = turn(db, "Hello")  # the seed's WELCOME step
    assert first["output"]["step"] == "welcome"
    # Seed the step the seed's WELCOME cannot leave by itself, through the same store.
    import asyncio

    async def move() -> None:
        store = SQLiteStateStore(db_path=db)
        await StateStore(store).save("conv-7", "onboarding-agent", {"step": "collect_name"})
        await store.close()

    asyncio.run(move())
    second = turn(db, "My name is Alice")
    assert second["output"]["state"] == {"step": "collect_email", "name": "Alice", "email": ""}
    third = turn(db, "alice@example.com")  # a third process: picks up at collect_email
    assert third["requests"][0] == {
        "system": "Collect the user's email using save_email tool.",
        "tools": ["save_email"],
    }
    assert third["output"]["state"] == {"step": "complete", "name": "Alice", "email": "alice@example.com"}
