"""Bad input to messages and RequestSpec gets a typed error a user can act on."""

from __future__ import annotations

from typing import Any

import pytest
from llm_client import (
    InvalidMessageError,
    InvalidRequestError,
    Message,
    RequestSpec,
    ToolArgumentsError,
    ToolCall,
    normalize_messages,
)
from llm_client.messages import parse_tool_arguments, validate_message


def test_a_prompt_string_is_one_user_message() -> None:
    assert normalize_messages("hi") == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("role", ["robot", None, "", ["user"]])
def test_unknown_role(role: Any) -> None:
    with pytest.raises(InvalidMessageError, match=r"unknown role.*expected one of assistant, developer"):
        normalize_messages([{"role": role, "content": "x"}])


def test_error_names_the_position_of_the_bad_message() -> None:
    with pytest.raises(InvalidMessageError, match="message 1 has unknown role 'bot'"):
        normalize_messages([{"role": "user", "content": "ok"}, {"role": "bot", "content": "x"}])


@pytest.mark.parametrize("role", ["user", "system", "developer"])
def test_missing_content(role: str) -> None:
    with pytest.raises(InvalidMessageError, match=rf"\({role}\) is missing 'content'"):
        normalize_messages([{"role": role}])
    with pytest.raises(InvalidMessageError, match="missing 'content'"):
        normalize_messages([{"role": role, "content": ""}])


def test_content_of_the_wrong_type() -> None:
    with pytest.raises(
        InvalidMessageError, match="content must be a string, a list of content parts or None, got int"
    ):
        normalize_messages([{"role": "user", "content": 42}])


def test_assistant_needs_content_or_tool_calls() -> None:
    with pytest.raises(InvalidMessageError, match="neither content nor tool_calls"):
        normalize_messages([{"role": "assistant", "content": None}])


def test_tool_message_without_tool_call_id() -> None:
    with pytest.raises(InvalidMessageError, match=r"\(tool\) is missing 'tool_call_id'"):
        normalize_messages([{"role": "tool", "content": "42"}])
    with pytest.raises(InvalidMessageError, match="missing 'tool_call_id'"):
        Message(role="tool", content="42")


def test_tool_message_without_content() -> None:
    with pytest.raises(InvalidMessageError, match=r"\(tool\) is missing 'content'"):
        normalize_messages([{"role": "tool", "tool_call_id": "c1"}])


def test_empty_message_list_and_empty_prompt() -> None:
    with pytest.raises(InvalidMessageError, match="messages is empty"):
        normalize_messages([])
    with pytest.raises(InvalidMessageError, match="prompt is empty"):
        normalize_messages("")


@pytest.mark.parametrize("value", [42, None])
def test_messages_that_are_not_messages(value: Any) -> None:
    with pytest.raises(
        InvalidMessageError, match="messages must be a string, a message dict, a Message or a list"
    ):
        normalize_messages(value)


def test_message_that_is_not_a_dict() -> None:
    with pytest.raises(InvalidMessageError, match="message 0 must be a dict or a Message, got int"):
        normalize_messages([1])  # type: ignore[list-item]


def test_bad_tool_calls_in_an_assistant_message() -> None:
    with pytest.raises(InvalidMessageError, match="tool_calls must be a list"):
        validate_message({"role": "assistant", "tool_calls": {"id": "x"}})
    with pytest.raises(InvalidMessageError, match=r"needs function.name"):
        validate_message({"role": "assistant", "tool_calls": [{"id": "c1", "function": {}}]})
    with pytest.raises(InvalidMessageError, match="needs a non-empty string 'id'"):
        validate_message({"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]})
    with pytest.raises(InvalidMessageError, match="a tool call must be a dict or a ToolCall, got str"):
        validate_message({"role": "assistant", "tool_calls": ["f"]})
    with pytest.raises(InvalidMessageError, match="arguments must be a JSON string or an object, got int"):
        validate_message(
            {"role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": 3}}]}
        )


def test_tool_call_objects_inside_a_dict_message_are_accepted() -> None:
    [message] = normalize_messages([{"role": "assistant", "tool_calls": [ToolCall("c1", "f", '{"a": 1}')]}])
    assert message["tool_calls"] == [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    ]


def test_tool_call_arguments_given_as_an_object_become_json() -> None:
    call = ToolCall.from_dict({"id": "c1", "function": {"name": "f", "arguments": {"a": 1}}})
    assert call.arguments == '{"a": 1}'
    assert ToolCall.from_dict({"id": "c1", "function": {"name": "f", "arguments": None}}).arguments == "{}"


def test_parse_arguments_with_invalid_json() -> None:
    call = ToolCall(id="c1", name="search", arguments='{"q": "x"')
    with pytest.raises(ToolArgumentsError, match="arguments for tool 'search' are not valid JSON") as info:
        call.parse_arguments()
    assert isinstance(info.value.__cause__, ValueError)


def test_parse_arguments_that_are_not_an_object() -> None:
    with pytest.raises(ToolArgumentsError, match="must be a JSON object, got list"):
        ToolCall(id="c1", name="search", arguments="[1]").parse_arguments()
    with pytest.raises(ToolArgumentsError, match="must be a JSON string or an object, got int"):
        parse_tool_arguments("search", 5)  # type: ignore[arg-type]


def test_parse_arguments_valid_and_empty() -> None:
    assert ToolCall(id="c1", name="f", arguments='{"a": [1]}').parse_arguments() == {"a": [1]}
    assert ToolCall(id="c1", name="f", arguments="").parse_arguments() == {}
    assert parse_tool_arguments("f", None) == {}


def test_message_round_trip() -> None:
    msg = Message.assistant("thinking", [ToolCall("c1", "f")])
    assert Message.from_dict(msg.to_dict()) == msg


def test_unknown_request_option() -> None:
    with pytest.raises(InvalidRequestError, match=r"unknown request option\(s\) \['temprature'\]") as info:
        RequestSpec.build("hi", temprature=0.2)
    assert "temperature" in str(info.value)  # the known names are listed
    assert "extra={...}" in str(info.value)


def test_bad_tool_definitions_in_a_request() -> None:
    with pytest.raises(InvalidRequestError, match="a tool must be a Tool or a dict, got int"):
        RequestSpec.build("hi", tools=[1])  # type: ignore[list-item]
    with pytest.raises(InvalidRequestError, match="needs a 'function' or a 'name'"):
        RequestSpec.build("hi", tools=[{"type": "function"}])
