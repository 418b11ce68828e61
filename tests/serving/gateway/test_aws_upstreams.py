"""Bedrock and SageMaker upstreams through the gateway, with botocore's Stubber standing in for the services."""

from __future__ import annotations

import io

import boto3
import orjson
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from serving.aws.bedrock import BedrockInvoker
from serving.aws.sagemaker import SageMakerInvoker
from serving.gateway.upstreams import BedrockUpstreamClient, SageMakerUpstreamClient
from tests.serving.gateway.conftest import chat, sse_events

CONVERSE_OK = {"output": {"message": {"role": "assistant", "content": [{"text": "Hi from Bedrock"}]}},
               "stopReason": "end_turn", "usage": {"inputTokens": 5, "outputTokens": 4, "totalTokens": 9},
               "metrics": {"latencyMs": 12}}


def _client(service: str):
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def _with_bedrock(cfg):
    cfg["upstreams"]["br"] = {"kind": "bedrock", "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
                              "region": "us-east-1"}
    cfg["routes"]["bedrock"] = {"targets": [{"upstream": "br"}], "fallbacks": ["a"],
                                "retryBudget": {"ratio": 1.0, "minPerSecond": 100}}


def test_bedrock_converse_through_the_gateway_and_fallback_on_throttling(make_gateway, stubs):
    client = _client("bedrock-runtime")
    stub = Stubber(client)
    stub.add_response("converse", CONVERSE_OK)
    stub.add_client_error("converse", service_error_code="ThrottlingException", http_status_code=429)
    stub.activate()
    inv = BedrockInvoker("anthropic.claude-3-haiku-20240307-v1:0", client=client)
    g = make_gateway(_with_bedrock, upstreams={"br": lambda c: BedrockUpstreamClient("br", c, invoker=inv)})
    r = g.post(chat("hello", model="bedrock", max_tokens=10))
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "Hi from Bedrock"
    assert r.json()["usage"]["total_tokens"] == 9 and r.headers["x-gateway-upstream"] == "br"
    r = g.post(chat("hello", model="bedrock", max_tokens=10))
    assert r.status_code == 200 and r.headers["x-gateway-upstream"] == "a"
    assert g.metric("gateway_upstream_errors_total", upstream="br", reason="ThrottlingException") == 1
    stub.assert_no_pending_responses()


def test_bedrock_validation_error_is_a_400_not_a_fallback(make_gateway, stubs):
    client = _client("bedrock-runtime")
    inv = BedrockInvoker("m", client=client)
    g = make_gateway(_with_bedrock, upstreams={"br": lambda c: BedrockUpstreamClient("br", c, invoker=inv)})
    r = g.post(chat("hello", model="bedrock", max_tokens=10, n=2))  # Converse returns one choice
    assert r.status_code == 400 and "not supported by Bedrock" in r.json()["error"]["message"]
    assert stubs["a"].state.requests == 0


class _FakeStreamingInvoker:
    def converse_stream(self, req):
        base = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "m"}
        yield dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        for w in ("Hi", " there"):
            yield dict(base, choices=[{"index": 0, "delta": {"content": w}, "finish_reason": None}])
        yield dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}],
                   usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5})


def test_bedrock_stream_relayed_as_sse_and_completions_translated(make_gateway):
    g = make_gateway(_with_bedrock, upstreams={"br": lambda c: BedrockUpstreamClient("br", c,
                                                                                   invoker=_FakeStreamingInvoker())})
    r = g.post(chat("hello", model="bedrock", stream=True, stream_options={"include_usage": True}))
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == "Hi there"
    assert chunks[-1]["usage"]["total_tokens"] == 5
    r = g.post({"model": "bedrock", "prompt": "hello", "stream": True}, path="/v1/completions")
    texts = [orjson.loads(e)["choices"][0]["text"] for e in sse_events(r.text)[:-1]]
    assert "".join(texts) == "Hi there"


def test_sagemaker_invoke_endpoint_through_the_gateway(make_gateway):
    client = _client("sagemaker-runtime")
    stub = Stubber(client)
    payload = orjson.dumps({"id": "c1", "object": "chat.completion", "created": 1, "model": "llama",
                            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi from SM"},
                                         "finish_reason": "stop"}],
                            "usage": {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}})
    stub.add_response("invoke_endpoint", {"Body": StreamingBody(io.BytesIO(payload), len(payload)),
                                          "ContentType": "application/json"},
                      {"EndpointName": "llama-ep", "Body": ANY, "ContentType": "application/json",
                       "Accept": "application/json"})
    stub.activate()
    inv = SageMakerInvoker("llama-ep", client=client)

    def cfg(c):
        c["upstreams"]["sm"] = {"kind": "sagemaker", "endpointName": "llama-ep", "region": "us-east-1"}
        c["routes"]["sm"] = {"targets": [{"upstream": "sm"}]}

    g = make_gateway(cfg, upstreams={"sm": lambda c: SageMakerUpstreamClient("sm", c, invoker=inv)})
    r = g.post(chat("hello", model="sm", max_tokens=10))
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "Hi from SM"
    assert g.metric("gateway_tokens_total", tenant="acme", model="sm", direction="out") == 3
