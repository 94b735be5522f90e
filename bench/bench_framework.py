"""Journey framework throughput: turns/s of the onboarding journey, ours vs a LangGraph state graph.

Not a test module. No network. Usage: ``.venv/bin/python bench/bench_framework.py [--quick]``.

The flow (both sides, scripted model, no I/O): a conversation of 3 user turns through the seed's
onboarding journey, starting at COLLECT_NAME:
  turn 1 "My name is Alice" -> model calls save_name -> step COLLECT_EMAIL -> model relays
  turn 2 "alice@example.com" -> model calls save_email -> step COMPLETE -> model relays
  turn 3 "thanks" -> model answers (COMPLETE prompt, no tools)
= 5 model calls and 2 tool calls per conversation; state is carried between turns in memory.

* framework: ``JourneyAgent`` (seed classes) with a MockLLMClient(handler=...) model, state in a
  ``MemoryManager()`` (core's InMemoryStateStore), one ``agent.run(MockRunContext)`` per turn:
  so each turn includes per-step prompt/tool building, llm-client argument validation, event
  emission and checkpoints.
* langgraph: a StateGraph with an "agent" node (calls the same scripted model function on the
  step's prompt and tools) and a "tools" node (runs the tool, which updates step/name/email),
  conditional edges agent -> tools | END, tools -> agent; state between turns kept by an
  InMemorySaver checkpointer under one thread_id.

Both models are the same pure function of (system prompt, tools, messages), so the difference is
framework overhead. Interleaved trials (the variant order rotates each trial); medians.
"""

from __future__ import annotations

import asyncio
import gc
import operator
import os
import re
import statistics
import sys
import time
from typing import Annotated, Any, TypedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(
    0,
    os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "packages", "agent-runtime-framework", "tests"
    ),
)
import common
import seed_onboarding as seed

TURNS = ["My name is Alice", "alice@example.com", "thanks"]
PROMPTS = {
    "collect_name": "Collect the user's name using save_name tool.",
    "collect_email": "Collect the user's email using save_email tool.",
    "complete": "Thank the user for completing onboarding.",
}
TOOLS = {"collect_name": ["save_name"], "collect_email": ["save_email"], "complete": []}
NAME = re.compile(r"(?:name is|I am|I'm|call me)\s+([A-Z][a-z]+)")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def decide(
    system: str, tools: set[str], messages: list[dict[str, Any]]
) -> tuple[str | None, dict[str, Any] | None, str]:
    """The scripted model for the LangGraph side: (tool name, args, text), same rules as seed.scripted_model."""
    user_at = max(i for i, m in enumerate(messages) if m["role"] == "user")
    text = messages[user_at]["content"]
    called = {m.get("tool") for m in messages[user_at:] if m["role"] == "assistant"}
    if "save_name" in tools and "save_name" not in called and (m := NAME.search(text)):
        return "save_name", {"name": m.group(1)}, ""
    if "save_email" in tools and "save_email" not in called and (m := EMAIL.search(text)):
        return "save_email", {"email": m.group(0)}, ""
    if messages[-1]["role"] == "tool":
        return None, None, messages[-1]["content"]
    if "Thank" in system:
        return None, None, "Thanks for completing onboarding!"
    return None, None, "Hi! What's your name?"


class S(TypedDict):
    messages: Annotated[list[dict[str, Any]], operator.add]
    step: str
    name: str
    email: str


def build_langgraph():
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import END, START, StateGraph

    def agent(state: S) -> dict[str, Any]:
        step = state["step"]
        tool, args, text = decide(PROMPTS[step], set(TOOLS[step]), state["messages"])
        if tool is not None:
            return {"messages": [{"role": "assistant", "tool": tool, "args": args, "content": None}]}
        return {"messages": [{"role": "assistant", "content": text}]}

    def tools(state: S) -> dict[str, Any]:
        call = state["messages"][-1]
        if call["tool"] not in TOOLS[state["step"]]:
            return {"messages": [{"role": "tool", "content": f"Error: unknown tool {call['tool']!r}"}]}
        if call["tool"] == "save_name":
            name = call["args"]["name"]
            return {
                "name": name,
                "step": "collect_email",
                "messages": [{"role": "tool", "content": f"Great, {name}! Now, what's your email?"}],
            }
        return {
            "email": call["args"]["email"],
            "step": "complete",
            "messages": [{"role": "tool", "content": f"Perfect! You're all set, {state['name']}!"}],
        }

    def route(state: S) -> str:
        return "tools" if state["messages"][-1].get("tool") else END

    g = StateGraph(S)
    g.add_node("agent", agent)
    g.add_node("tools", tools)
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", route, ["tools", END])
    g.add_edge("tools", "agent")
    return g.compile(checkpointer=InMemorySaver())


async def main() -> None:
    p = common.base_argparser(__doc__)
    p.set_defaults(n=300, trials=7, warmup=30, budget=60.0)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.n, args.trials, args.warmup = 30, 3, 5

    from agent_runtime_core.testing import MockLLMClient, MockRunContext
    from agent_runtime_framework import MemoryManager

    llm = MockLLMClient(handler=seed.scripted_model)
    counter = {"conv": 0}

    async def framework_conversation() -> dict[str, Any]:
        counter["conv"] += 1
        conv = f"c{counter['conv']}"
        memory = MemoryManager()
        agent = seed.OnboardingAgent(llm_client=llm, memory=memory)
        await memory.save_state(conv, agent.key, {"step": "collect_name"})
        out: dict[str, Any] = {}
        for text in TURNS:
            ctx = MockRunContext(
                [{"role": "user", "content": text}], {"conversation_id": conv}, check_json=False
            )
            out = (await agent.run(ctx)).final_output
        llm.mock_provider.calls.clear()
        return out

    graph = build_langgraph()

    async def langgraph_conversation() -> dict[str, Any]:
        counter["conv"] += 1
        cfg = {"configurable": {"thread_id": f"t{counter['conv']}"}}
        state: dict[str, Any] = {}
        first = True
        for text in TURNS:
            update: dict[str, Any] = {"messages": [{"role": "user", "content": text}]}
            if first:
                update.update(step="collect_name", name="", email="")
                first = False
            state = await graph.ainvoke(update, cfg)
        return state

    # correctness first: both end COMPLETE with the same data
    a = await framework_conversation()
    b = await langgraph_conversation()
    assert a["state"] == {"step": "complete", "name": "Alice", "email": "alice@example.com"}, a
    assert (b["step"], b["name"], b["email"]) == ("complete", "Alice", "alice@example.com"), b

    variants = {"agent_runtime_framework": framework_conversation, "langgraph": langgraph_conversation}
    for fn in variants.values():
        for _ in range(args.warmup):
            await fn()
    gc.collect()

    async def measure(fn) -> dict[str, float]:
        t0 = time.perf_counter()
        deadline = t0 + args.budget
        done = 0
        for _ in range(args.n):
            await fn()
            done += 1
            if time.perf_counter() > deadline:
                break
        dt = time.perf_counter() - t0
        return {"conversations": done, "seconds": dt, "turns_per_s": done * len(TURNS) / dt}

    per = await common.interleaved(variants, args.trials, measure)
    result = {
        "benchmark": "framework",
        "machine": common.machine(),
        "versions": common.versions("langgraph", "langchain-core"),
        "args": vars(args),
        "turns_per_conversation": len(TURNS),
        "model_calls_per_conversation": 5,
        "variants": {},
    }
    for name, trials in per.items():
        tps = [t["turns_per_s"] for t in trials]
        result["variants"][name] = {
            "median_turns_per_s": statistics.median(tps),
            "min_turns_per_s": min(tps),
            "max_turns_per_s": max(tps),
            "median_us_per_turn": 1e6 / statistics.median(tps),
            "trials": trials,
        }
    common.emit(result, args.out)
    f, g = (result["variants"][k]["median_turns_per_s"] for k in ("agent_runtime_framework", "langgraph"))
    print(f"\nframework {f:,.0f} turns/s, langgraph {g:,.0f} turns/s, ratio {f / g:.2f}x", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
