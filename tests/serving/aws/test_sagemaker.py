"""serving.aws.sagemaker: InvokeEndpoint through moto, InvokeEndpointWithResponseStream through Stubber + real events.

moto implements InvokeEndpoint (answers come from its documented results queue, and it records the request it got);
it does not implement InvokeEndpointWithResponseStream, so that call goes through ``botocore.stub.Stubber`` (request
checked against the service model) and the response body is a real ``EventStream`` decoded by botocore from
event-stream bytes whose ``PayloadPart`` boundaries cut LMI's JSON lines at arbitrary points.
"""

import base64
import json

import boto3
import pytest
import requests
from botocore.exceptions import EventStreamError
from botocore.stub import Stubber
from moto import mock_aws

from serving.aws import InvalidRequest, ModelResponseError
from serving.aws.sagemaker import SageMakerInvoker, chunks_from_payload_parts
from tests.kit import eventstream as es

ENDPOINT = "sagemaker-qwen7b-endpoint-1e7ede5"
REQUEST = {"model": "qwen7b", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 16}
COMPLETION = {"id": "chatcmpl-0", "object": "chat.completion", "created": 1711997860,
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "logprobs": None,
                           "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}}


def _queue_results(*bodies):
    requests.post("http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results", json={
        "results": [{"Body": b, "ContentType": "application/json", "InvokedProductionVariant": "AllTraffic",
                     "CustomAttributes": ""} for b in bodies]})


def _sent_requests():
    """What moto received: its results map keys every request by (SageMaker headers, Accept, Body)."""
    from moto.sagemakerruntime.models import sagemakerruntime_backends
    backend = sagemakerruntime_backends["123456789012"]["us-east-1"]
    return [json.loads(base64.b64decode(k)) for by_endpoint in backend.results.values() for k in by_endpoint]


def _client_recording_urls(urls):
    client = boto3.client("sagemaker-runtime", region_name="us-east-1")
    client.meta.events.register("request-created.sagemaker-runtime.*", lambda request, **_: urls.append(request.url))
    return client


@mock_aws
def test_invoke_sends_a_chat_request_and_returns_the_completion():
    _queue_results(json.dumps(COMPLETION))
    urls = []
    client = _client_recording_urls(urls)
    out = SageMakerInvoker(ENDPOINT, client=client).invoke({**REQUEST, "stream": True})
    assert urls == [f"https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/{ENDPOINT}/invocations"]
    assert out == {**COMPLETION, "model": "qwen7b"}
    sent = _sent_requests()
    assert len(sent) == 1
    body = json.loads(sent[0]["Body"])
    assert body == {"model": "qwen7b", "messages": REQUEST["messages"], "max_tokens": 16, "stream": False}
    assert sent[0]["Accept"] == "application/json"


@mock_aws
def test_invoke_targets_the_inference_component_when_given():
    _queue_results(json.dumps(COMPLETION))
    client = boto3.client("sagemaker-runtime", region_name="us-east-1")
    SageMakerInvoker(ENDPOINT, client=client, inference_component="ic-qwen").invoke(REQUEST)
    headers = {k.lower(): v for k, v in _sent_requests()[0].items()}
    assert headers["x-amzn-sagemaker-inference-component"] == "ic-qwen"


@mock_aws
def test_invoke_raises_on_an_lmi_error_object():
    _queue_results(json.dumps({"error": "CUDA out of memory", "code": 424}))
    client = boto3.client("sagemaker-runtime", region_name="us-east-1")
    with pytest.raises(ModelResponseError, match="CUDA out of memory") as exc:
        SageMakerInvoker(ENDPOINT, client=client).invoke(REQUEST)
    assert exc.value.code == 424


@mock_aws
def test_invoke_raises_on_a_non_chat_answer():
    _queue_results(json.dumps({"generated_text": "hello"}))
    client = boto3.client("sagemaker-runtime", region_name="us-east-1")
    with pytest.raises(ModelResponseError, match="no 'choices'"):
        SageMakerInvoker(ENDPOINT, client=client).invoke(REQUEST)


def test_requests_without_messages_are_refused():
    with pytest.raises(InvalidRequest, match="messages is required"):
        SageMakerInvoker(ENDPOINT, client=object()).invoke({"prompt": "x"})


def _chunk(content=None, finish=None, usage=None, role=None):
    delta = {}
    if role:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    out = {"id": "chatcmpl-7", "object": "chat.completion.chunk", "created": 1712792433, "model": "qwen7b",
           "choices": [] if usage else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
    if usage:
        out["usage"] = usage
    return out


LINES = [_chunk("", role="assistant"), _chunk("Hel"), _chunk("lo"), _chunk(finish="stop"),
         _chunk(usage={"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11})]
# LMI jsonlines: one object per line, then the empty line that replaced vLLM's [DONE]
LMI_BYTES = b"".join(json.dumps(c).encode() + b"\n" for c in LINES) + b"\n"


def _stream_stub(client, payload: bytes, *, part_size: int):
    stub = Stubber(client)
    expected = {"EndpointName": ENDPOINT, "ContentType": "application/json",
                "Body": json.dumps({"model": "qwen7b", "messages": REQUEST["messages"], "max_tokens": 16,
                                    "stream": True, "stream_options": {"include_usage": True}},
                                   separators=(",", ":")).encode()}
    response = {"Body": {"PayloadPart": {"Bytes": b"{}"}}, "ContentType": "application/jsonlines"}
    stub.add_response("invoke_endpoint_with_response_stream", response, expected)
    parts = [payload[i:i + part_size] for i in range(0, len(payload), part_size)]
    response["Body"] = es.event_stream(client, "InvokeEndpointWithResponseStream", "Body",
                                       [es.event("PayloadPart", p, content_type="application/octet-stream")
                                        for p in parts], chunk_size=29)
    return stub


def test_payload_part_events_match_the_service_model():
    client = boto3.client("sagemaker-runtime", region_name="us-east-1")
    es.validate_event(client, "InvokeEndpointWithResponseStream", "Body", {"PayloadPart": {"Bytes": b"{}\n"}})


@pytest.mark.parametrize("part_size", [7, 64, 4096])
def test_invoke_stream_reassembles_lines_cut_across_payload_parts(part_size):
    client = boto3.client("sagemaker-runtime", region_name="us-east-1")
    stub = _stream_stub(client, LMI_BYTES, part_size=part_size)
    with stub:
        chunks = list(SageMakerInvoker(ENDPOINT, client=client).invoke_stream(REQUEST))
    stub.assert_no_pending_responses()
    assert chunks == LINES
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == "Hello"
    assert chunks[-1]["usage"]["total_tokens"] == 11


def test_sse_framing_from_plain_vllm_is_accepted():
    sse = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in LINES) + b"data: [DONE]\n\n"
    assert list(chunks_from_payload_parts([sse[:10], sse[10:333], sse[333:]], model="m")) == LINES


def test_an_error_line_mid_stream_raises():
    data = json.dumps(LINES[1]).encode() + b"\n" + json.dumps({"error": {"message": "engine died", "code": 500}}).encode()
    with pytest.raises(ModelResponseError, match="engine died"):
        list(chunks_from_payload_parts([data], model="m"))


def test_model_stream_error_event_surfaces_as_event_stream_error():
    client = boto3.client("sagemaker-runtime", region_name="us-east-1")
    stub = Stubber(client)
    response = {"Body": {"PayloadPart": {"Bytes": b"{}"}}}
    stub.add_response("invoke_endpoint_with_response_stream", response)
    response["Body"] = es.event_stream(client, "InvokeEndpointWithResponseStream", "Body", [
        es.event("PayloadPart", json.dumps(LINES[1]).encode() + b"\n", content_type="application/octet-stream"),
        es.exception("ModelStreamError", "container crashed")])
    got = []
    with stub, pytest.raises(EventStreamError) as exc:
        for c in SageMakerInvoker(ENDPOINT, client=client).invoke_stream(REQUEST):
            got.append(c)
    assert exc.value.response["Error"]["Code"] == "ModelStreamError"
    assert got == [LINES[1]]
