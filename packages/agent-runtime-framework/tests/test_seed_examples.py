"""Every code block of the seed README, run as written with the scripted model standing in.

What the seed leaves undefined is stubbed minimally: ``my_llm_client``/``my_llm`` (a MockLLMClient),
``context`` (core's MockRunContext), ``conversation_id``, ``MyStep``/``MyState``/``MyTools``,
``PROMPTS``/``TOOLS``, ``messages``/``new_state``, and the Django import (core's registry instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from types import ModuleType
from typing import Any

import pytest
from agent_runtime_core import get_runtime, register_runtime, unregister_runtime
from agent_runtime_core.llm import use_llm_client
from agent_runtime_core.testing import MockLLMClient, create_test_context
from agent_runtime_framework import (
    BaseJourneyState,
    BaseJourneyTools,
    ConversationStore,
    Executor,
    ExecutorConfig,
    ExecutorHooks,
    IntentRouter,
    LoggingHooks,
    MemoryManager,
    MethodToolExecutor,
    PromptManager,
    PromptTemplate,
    RouteDefinition,
    StateStore,
    StepPromptMapping,
    ToolSchema,
    ToolSchemaBuilder,
)
from llm_client import MockResponse


async def test_basic_example_runs_as_written(seed: ModuleType) -> None:
    my_llm_client = MockLLMClient(handler=seed.scripted_model)
    context = create_test_context(input_messages=[{"role": "user", "content": "Hi"}])

    # 5. Run your agent
    agent = seed.OnboardingAgent(llm_client=my_llm_client)
    result = await agent.run(context)

    # The seed's WELCOME step offers no tools: the model greets, and the journey stays there.
    assert result.final_output["response"] == "Hi! What's your name?"
    assert result.final_output["step"] == "welcome"
    assert my_llm_client.calls[0].messages[0]["content"] == "Welcome! Ask for the user's name."
    assert my_llm_client.calls[0].tools == ()
    assert context.checkpoints[-1] == {"agent": "onboarding-agent", "state": seed.OnboardingState().to_dict()}


async def test_basic_example_completes_the_journey_from_collect_name(seed: ModuleType) -> None:
    llm = MockLLMClient(handler=seed.scripted_model)
    agent = seed.OnboardingAgent(llm_client=llm)
    ctx = create_test_context(
        input_messages=[{"role": "user", "content": "My name is Alice, alice@example.com"}]
    )
    ctx.checkpoints.append({"agent": agent.key, "state": {"step": "collect_name"}})
    result = await agent.run(ctx)
    assert result.final_output["state"] == {"step": "complete", "name": "Alice", "email": "alice@example.com"}
    assert result.final_output["is_complete"] is True
    assert [c.messages[0]["content"] for c in llm.calls] == [
        "Collect the user's name using save_name tool.",
        "Collect the user's email using save_email tool.",
        "Thank the user for completing onboarding.",
    ]
    assert result.final_output["response"] == "Perfect! You're all set, Alice!"


async def test_intent_routing_block() -> None:
    class Journey(str, Enum):  # noqa: UP042 (as the seed writes it)
        QUOTE = "quote"
        CLAIM = "claim"
        SUPPORT = "support"

    router = IntentRouter[Journey]()
    router.add_route(
        RouteDefinition(
            journey=Journey.QUOTE,
            name="start_quote",
            description="Get a new insurance quote",
        )
    )
    router.add_route(
        RouteDefinition(
            journey=Journey.CLAIM,
            name="file_claim",
            description="File or check on a claim",
        )
    )

    # Get routing tools for LLM
    tools = router.get_tool_schemas()

    # After LLM calls a routing tool
    journey = router.resolve_tool_call("start_quote")  # Journey.QUOTE

    assert journey is Journey.QUOTE
    assert [t.to_openai_format()["function"]["name"] for t in tools] == ["start_quote", "file_claim"]
    assert tools[1].to_openai_format()["function"]["description"] == "File or check on a claim"


async def test_memory_management_block(seed: ModuleType) -> None:
    conversation_id = "conv-1"
    new_state = seed.OnboardingState(step=seed.OnboardingStep.COLLECT_EMAIL, name="Alice")
    messages = [{"role": "user", "content": "My name is Alice"}, {"role": "assistant", "content": "Hi Alice"}]

    # Set up stores
    state_store = StateStore()
    conversation_store = ConversationStore()
    manager = MemoryManager(state_store, conversation_store)

    # Load context
    context = await manager.load_context(conversation_id, "my-agent")

    # Save after run
    await manager.save_state(conversation_id, "my-agent", new_state)
    await manager.save_messages(conversation_id, messages)

    assert context.state is None and context.messages == []
    again = await manager.load_context(conversation_id, "my-agent")
    assert again.state == {"step": "collect_email", "name": "Alice", "email": ""}
    assert again.messages == messages


async def test_prompt_management_block() -> None:
    class MyStep(str, Enum):  # noqa: UP042 (as the seed writes it)
        WELCOME = "welcome"
        COLLECTING = "collecting"
        OTHER = "other"

    # Simple mapping
    prompts = StepPromptMapping[MyStep](
        prompts={
            MyStep.WELCOME: "Welcome! How can I help?",
            MyStep.COLLECTING: "Please provide your information.",
        },
        default="I'm here to assist you.",
    )

    # With templates
    template = PromptTemplate(
        "Hello $name! You are at step ${step}.",
        defaults={"name": "there"},
    )
    prompts.add(MyStep.WELCOME, template)

    # Render
    prompt = prompts.get(MyStep.WELCOME, name="Alice", step="welcome")

    assert prompt == "Hello Alice! You are at step welcome."
    assert prompts.get(MyStep.WELCOME, step="welcome") == "Hello there! You are at step welcome."
    assert prompts.get(MyStep.OTHER) == "I'm here to assist you."


async def test_execution_hooks_block() -> None:
    my_llm = MockLLMClient(responses=[MockResponse.tool_call("ping", {}), "pong received"])
    seen: list[str] = []

    class MyHooks(ExecutorHooks):
        async def on_tool_start(self, name: str, arguments: dict) -> None:
            print(f"🔧 Calling tool: {name}")
            seen.append(f"start {name}")

        async def on_tool_end(self, name: str, result: str) -> None:
            print(f"✅ Tool completed: {name}")
            seen.append(f"end {name} {result}")

    executor = Executor(
        llm_client=my_llm,
        hooks=MyHooks(),
    )

    def ping() -> str:
        return "pong"

    result = await executor.run(
        messages=[{"role": "user", "content": "ping"}], tools=[ToolSchema.from_function(ping)]
    )
    assert seen == ["start ping", "end ping pong"]
    assert result.content == "pong received"
    assert isinstance(LoggingHooks(), ExecutorHooks)


async def test_core_integration_block_uses_get_llm_client(seed: ModuleType) -> None:
    client = MockLLMClient(handler=seed.scripted_model)
    MyAgent = seed.OnboardingAgent
    ctx = create_test_context(input_messages=[{"role": "user", "content": "Hi"}])

    # Framework automatically uses agent_runtime_core's LLM client
    agent = MyAgent()  # No need to pass llm_client explicitly

    with use_llm_client(client):
        result = await agent.run(ctx)
    assert client.call_count == 1
    assert result.final_output["response"] == "Hi! What's your name?"


async def test_django_adapter_block_without_django() -> None:
    from agent_runtime_framework.adapters import DjangoRuntimeAdapter

    class MyStep(str, Enum):  # noqa: UP042 (as the seed writes it)
        ASK = "ask"
        DONE = "done"

    @dataclass
    class MyState(BaseJourneyState[MyStep]):
        step: MyStep = MyStep.ASK
        answer: str = ""

        def is_complete(self) -> bool:
            return self.step == MyStep.DONE

    class MyTools(BaseJourneyTools[MyState]):
        async def record(self, answer: str) -> str:
            self.state.answer = await self.backend_client.normalise(answer)
            self.state.step = MyStep.DONE
            await self._notify_state_change()
            return f"recorded {self.state.answer}"

    class Backend:
        async def normalise(self, text: str) -> str:
            return text.upper()

    record = ToolSchemaBuilder("record").param("answer", "string", "The answer", required=True).build()
    PROMPTS = {MyStep.ASK: "Ask the question.", MyStep.DONE: "Say goodbye."}
    TOOLS: dict[MyStep, list[ToolSchema]] = {MyStep.ASK: [record], MyStep.DONE: []}

    class MyDjangoAgent(DjangoRuntimeAdapter[MyState, MyTools, MyStep]):
        @property
        def key(self) -> str:
            return "my-agent"

        def get_initial_state(self) -> MyState:
            return MyState()

        def get_system_prompt(self, state: MyState) -> str:
            return PROMPTS[state.step]

        def get_tool_schemas(self, state: MyState) -> list[ToolSchema]:
            return TOOLS[state.step]

        def create_tools(self, state: MyState, ctx, backend_client) -> MyTools:
            return MyTools(state=state, backend_client=backend_client)

        async def execute_tool(self, tools: MyTools, name: str, args: dict) -> str:
            method = getattr(tools, name)
            return await method(**args)

    # Register (the seed imports django_agent_runtime's register_runtime; core's is the same contract)
    agent = MyDjangoAgent(backend_client=Backend())
    register_runtime(agent)
    try:
        assert get_runtime("my-agent") is agent
        llm = MockLLMClient(responses=[MockResponse.tool_call("record", {"answer": "yes"}), "Goodbye!"])
        ctx = create_test_context(input_messages=[{"role": "user", "content": "yes"}])
        with use_llm_client(llm):
            result = await agent.run(ctx)
    finally:
        unregister_runtime("my-agent")
    assert result.final_output["state"] == {"step": "done", "answer": "YES"}
    assert [c.messages[0]["content"] for c in llm.calls] == ["Ask the question.", "Say goodbye."]
    assert ctx.checkpoints[-1]["state"]["step"] == "done"


async def test_api_reference_blocks() -> None:
    schema = (
        ToolSchemaBuilder("my_tool")
        .description("What the tool does")
        .param("arg1", "string", "Description", required=True)
        .param("arg2", "number", "Description", required=False)
        .build()
    )
    assert schema.parameters == {
        "type": "object",
        "properties": {
            "arg1": {"type": "string", "description": "Description"},
            "arg2": {"type": "number", "description": "Description"},
        },
        "required": ["arg1"],
        "additionalProperties": False,
    }

    class Tools:
        async def my_tool(self, arg1: str, arg2: float = 1.0) -> str:
            return f"{arg1} x {arg2}"

    class MyHooks(ExecutorHooks):
        pass

    my_llm = MockLLMClient(responses=[MockResponse.tool_call("my_tool", {"arg1": "a", "arg2": 2}), "done"])
    tools = Tools()
    tool_schema = schema

    executor = Executor(
        llm_client=my_llm,
        tool_executor=MethodToolExecutor(tools),
        config=ExecutorConfig(max_iterations=10),
        hooks=MyHooks(),
    )

    result = await executor.run(
        messages=[{"role": "user", "content": "Hello"}],
        tools=[tool_schema],
        system_prompt="You are helpful.",
    )
    assert result.content == "done"
    assert result.tool_calls[0].content == "a x 2"
    assert my_llm.calls[0].messages[0] == {"role": "system", "content": "You are helpful."}

    class MyJourney(str, Enum):  # noqa: UP042 (as the seed writes it)
        QUOTE = "quote"

    router = IntentRouter[MyJourney]()
    router.add_route(
        RouteDefinition(
            journey=MyJourney.QUOTE,
            name="start_quote",
            description="Start a quote journey",
        )
    )
    assert [t.name for t in router.get_tool_schemas()] == ["start_quote"]
    assert router.resolve_tool_call("start_quote") is MyJourney.QUOTE

    class MyStep(str, Enum):  # noqa: UP042 (as the seed writes it)
        WELCOME = "welcome"

    @dataclass
    class State:
        step: MyStep
        name: str

    manager = PromptManager[MyStep](
        mapping=StepPromptMapping({MyStep.WELCOME: PromptTemplate("Hi $user_name, step $step")}),
        context_enricher=lambda state: {"user_name": state.name},
    )

    prompt = manager.get_prompt(State(MyStep.WELCOME, "Ann"))
    assert prompt == "Hi Ann, step welcome"


@pytest.mark.parametrize("bad", [None, "not a client"])
def test_agent_rejects_a_non_client(seed: ModuleType, bad: Any) -> None:
    if bad is None:
        assert seed.OnboardingAgent()._llm_client is None  # falls back to get_llm_client() at run
        return
    with pytest.raises(TypeError, match="LLMClient"):
        seed.OnboardingAgent(llm_client=bad)
