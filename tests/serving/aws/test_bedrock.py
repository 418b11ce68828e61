"""serving.aws.bedrock: OpenAI <-> Converse translation, checked against botocore's bedrock-runtime model.

Requests go through ``botocore.stub.Stubber`` (moto has no Converse), so botocore validates every request against the
service model and the stub asserts the exact parameters. Stubber validates a response dict but cannot produce an
event stream, so ConverseStream responses are real ``EventStream`` objects decoded by botocore from event-stream
wire bytes (``tests/kit/eventstream.py``); each event is also validated against the API model's union shape.
"""

import base64

import boto3
import pytest
from botocore.exceptions import EventStreamError
from botocore.stub import Stubber

from serving.aws import InvalidRequest
from serving.aws.bedrock import BedrockInvoker, chunks_from_stream_events, from_converse_response, to_converse_request
from tests.kit import eventstream as es

PROFILE = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123def456"


@pytest.fixture
def client():
    return boto3.client("bedrock-runtime", region_name="us-east-1")


def chat(**kw):
    return {"model": "nova", "messages": [{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": "Hi"}], **kw}


def test_request_maps_system_messages_sampling_and_stop():
    req = to_converse_request(PROFILE, chat(max_tokens=64, temperature=0.2, top_p=0.9, stop="END"))
    assert req == {
        "modelId": PROFILE,
        "system": [{"text": "Be brief."}],
        "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
        "inferenceConfig": {"maxTokens": 64, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]},
    }


def test_max_completion_tokens_wins_and_stop_lists_pass_through():
    req = to_converse_request(PROFILE, chat(max_completion_tokens=10, max_tokens=99, stop=["a", "b"]))
    assert req["inferenceConfig"] == {"maxTokens": 10, "stopSequences": ["a", "b"]}


def test_consecutive_same_role_messages_are_merged_and_developer_is_system():
    req = to_converse_request(PROFILE, {"messages": [
        {"role": "developer", "content": "rule 1"}, {"role": "system", "content": [{"type": "text", "text": "rule 2"}]},
        {"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": "assistant", "content": "c"}]})
    assert req["system"] == [{"text": "rule 1"}, {"text": "rule 2"}]
    assert req["messages"] == [{"role": "user", "content": [{"text": "a"}, {"text": "b"}]},
                               {"role": "assistant", "content": [{"text": "c"}]}]


def test_tools_round_trip_to_tool_config_tool_use_and_tool_result():
    req = to_converse_request(PROFILE, {
        "messages": [{"role": "user", "content": "weather?"},
                     {"role": "assistant", "content": None, "tool_calls": [
                         {"id": "t1", "type": "function", "function": {"name": "wx", "arguments": "{\"city\":\"Oslo\"}"}}]},
                     {"role": "tool", "tool_call_id": "t1", "content": "4C"}],
        "tools": [{"type": "function", "function": {"name": "wx", "description": "weather",
                                                     "parameters": {"type": "object"}}}],
        "tool_choice": "required"})
    assert req["toolConfig"] == {"tools": [{"toolSpec": {"name": "wx", "description": "weather",
                                                         "inputSchema": {"json": {"type": "object"}}}}],
                                 "toolChoice": {"any": {}}}
    assert req["messages"][1] == {"role": "assistant", "content": [
        {"toolUse": {"toolUseId": "t1", "name": "wx", "input": {"city": "Oslo"}}}]}
    assert req["messages"][2] == {"role": "user", "content": [
        {"toolResult": {"toolUseId": "t1", "content": [{"text": "4C"}]}}]}


def test_tool_choice_none_drops_the_tools():
    req = to_converse_request(PROFILE, chat(tools=[{"type": "function", "function": {"name": "x"}}], tool_choice="none"))
    assert "toolConfig" not in req


def test_inline_images_become_image_blocks_and_remote_urls_are_refused():
    png = base64.b64encode(b"\x89PNG....").decode()
    req = to_converse_request(PROFILE, {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is it"}, {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}}]}]})
    assert req["messages"][0]["content"][1] == {"image": {"format": "png", "source": {"bytes": b"\x89PNG...."}}}
    with pytest.raises(InvalidRequest, match="inline images only"):
        to_converse_request(PROFILE, {"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]})


@pytest.mark.parametrize("extra,needle", [
    ({"n": 2}, "n (Converse returns one choice)"),
    ({"logprobs": True}, "logprobs"),
    ({"presence_penalty": 0.5}, "presence_penalty"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
])
def test_unexpressible_parameters_are_refused_by_name(extra, needle):
    with pytest.raises(InvalidRequest, match="not supported by Bedrock Converse") as exc:
        to_converse_request(PROFILE, chat(**extra))
    assert needle in str(exc.value)


def test_conversation_must_start_with_a_user_turn():
    with pytest.raises(InvalidRequest, match="must start with a user message"):
        to_converse_request(PROFILE, {"messages": [{"role": "assistant", "content": "hello"}]})


def test_response_maps_text_stop_reason_and_usage():
    resp = {"output": {"message": {"role": "assistant", "content": [{"text": "Hel"}, {"text": "lo"}]}},
            "stopReason": "max_tokens", "usage": {"inputTokens": 7, "outputTokens": 3, "totalTokens": 10},
            "metrics": {"latencyMs": 120}, "ResponseMetadata": {"RequestId": "req-1"}}
    out = from_converse_response(resp, "nova", created=1700000000)
    assert out == {"id": "chatcmpl-req-1", "object": "chat.completion", "created": 1700000000, "model": "nova",
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "logprobs": None,
                                "finish_reason": "length"}],
                   "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}


def test_response_tool_use_becomes_tool_calls():
    resp = {"output": {"message": {"role": "assistant", "content": [
        {"toolUse": {"toolUseId": "t9", "name": "wx", "input": {"city": "Oslo"}}}]}}, "stopReason": "tool_use",
        "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}}
    choice = from_converse_response(resp, "m", created=0)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "t9", "type": "function", "function": {"name": "wx", "arguments": "{\"city\":\"Oslo\"}"}}]}


def test_invoker_converse_sends_a_request_the_service_model_accepts(client):
    stub = Stubber(client)
    expected = to_converse_request(PROFILE, chat(max_tokens=32))
    stub.add_response("converse", {
        "output": {"message": {"role": "assistant", "content": [{"text": "Hello"}]}}, "stopReason": "end_turn",
        "usage": {"inputTokens": 9, "outputTokens": 1, "totalTokens": 10}, "metrics": {"latencyMs": 80}}, expected)
    with stub:
        out = BedrockInvoker(PROFILE, client=client).converse(chat(max_tokens=32))
    stub.assert_no_pending_responses()
    assert out["choices"][0]["message"]["content"] == "Hello"
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["usage"] == {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}
    assert out["model"] == "nova"


def test_stubbed_request_with_an_invalid_shape_is_rejected_by_botocore(client):
    # the translation must never produce this: a number where the model wants a string
    from botocore.exceptions import ParamValidationError
    stub = Stubber(client)
    stub.add_response("converse", {"output": {"message": {"role": "assistant", "content": []}},
                                   "stopReason": "end_turn", "usage": {"inputTokens": 0, "outputTokens": 0,
                                                                       "totalTokens": 0}, "metrics": {"latencyMs": 1}})
    with stub, pytest.raises(ParamValidationError):
        client.converse(modelId=PROFILE, messages=[{"role": "user", "content": [{"text": 5}]}])


STREAM_EVENTS = [
    ("messageStart", {"role": "assistant"}),
    ("contentBlockDelta", {"delta": {"text": "Hel"}, "contentBlockIndex": 0}),
    ("contentBlockDelta", {"delta": {"text": "lo"}, "contentBlockIndex": 0}),
    ("contentBlockStop", {"contentBlockIndex": 0}),
    ("contentBlockStart", {"start": {"toolUse": {"toolUseId": "t1", "name": "wx"}}, "contentBlockIndex": 1}),
    ("contentBlockDelta", {"delta": {"toolUse": {"input": "{\"city\":"}}, "contentBlockIndex": 1}),
    ("contentBlockDelta", {"delta": {"toolUse": {"input": "\"Oslo\"}"}}, "contentBlockIndex": 1}),
    ("contentBlockStop", {"contentBlockIndex": 1}),
    ("messageStop", {"stopReason": "tool_use"}),
    ("metadata", {"usage": {"inputTokens": 12, "outputTokens": 5, "totalTokens": 17}, "metrics": {"latencyMs": 300}}),
]


def _stubbed_stream(client, messages, expected_params, *, chunk_size=13):
    """Queue a ConverseStream response in the Stubber (validated on a first event), then hand it a real
    EventStream decoded from wire bytes: Stubber returns the queued dict object itself."""
    stub = Stubber(client)
    response = {"stream": {"messageStart": {"role": "assistant"}}}
    stub.add_response("converse_stream", response, expected_params)
    response["stream"] = es.event_stream(client, "ConverseStream", "stream", messages, chunk_size=chunk_size)
    return stub


def test_every_stream_event_used_here_matches_the_service_model(client):
    for name, body in STREAM_EVENTS:
        es.validate_event(client, "ConverseStream", "stream", {name: body})


def test_invoker_converse_stream_yields_openai_chunks_with_usage_last(client):
    expected = to_converse_request(PROFILE, chat())
    stub = _stubbed_stream(client, [es.event(n, b) for n, b in STREAM_EVENTS], expected)
    with stub:
        chunks = list(BedrockInvoker(PROFILE, client=client).converse_stream(chat(stream=True)))
    stub.assert_no_pending_responses()
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Hello"
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks if c["choices"] and "tool_calls" in c["choices"][0]["delta"]]
    assert calls[0] == {"index": 0, "id": "t1", "type": "function", "function": {"name": "wx", "arguments": ""}}
    assert "".join(c["function"]["arguments"] for c in calls) == "{\"city\":\"Oslo\"}"
    finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finish == ["tool_calls"]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}


def test_mid_stream_service_error_surfaces_as_event_stream_error(client):
    messages = [es.event("messageStart", {"role": "assistant"}),
                es.event("contentBlockDelta", {"delta": {"text": "Hi"}, "contentBlockIndex": 0}),
                es.exception("throttlingException", "Too many tokens")]
    stub = _stubbed_stream(client, messages, to_converse_request(PROFILE, chat()))
    got = []
    with stub, pytest.raises(EventStreamError) as exc:
        for chunk in BedrockInvoker(PROFILE, client=client).converse_stream(chat()):
            got.append(chunk)
    assert exc.value.response["Error"]["Code"] == "throttlingException"
    assert [c["choices"][0]["delta"].get("content") for c in got] == ["", "Hi"]


def test_stream_without_metadata_still_ends_with_a_usage_chunk():
    chunks = list(chunks_from_stream_events([{"messageStart": {"role": "assistant"}},
                                             {"messageStop": {"stopReason": "end_turn"}}], "m", created=0))
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 0
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
