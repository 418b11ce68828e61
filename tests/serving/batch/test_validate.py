"""Batch input validation: one test per rule, each asserting the message; every bad line is listed."""

from __future__ import annotations

import json

import pytest

from serving.batch.validate import BatchValidationError, Limits, validate_batch

MODEL = "llama-3.1-8b"


def line(cid="r1", *, url="/v1/chat/completions", method="POST", body=None, **extra) -> dict:
    if body is None:
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}
    return {"custom_id": cid, "method": method, "url": url, "body": body, **extra}


def jsonl(*objs) -> bytes:
    return b"".join((o if isinstance(o, bytes) else json.dumps(o).encode()) + b"\n" for o in objs)


def bad(data: bytes, **kw) -> BatchValidationError:
    with pytest.raises(BatchValidationError) as exc:
        validate_batch(data, Limits(allowed_models=(MODEL,), **kw))
    return exc.value


def test_valid_file_gives_records_in_order_with_token_estimates():
    recs = validate_batch(jsonl(line("a"), line("b")), Limits(allowed_models=(MODEL,)))
    assert [(r.line, r.custom_id) for r in recs] == [(1, "a"), (2, "b")]
    # byte upper bound: "user" + "hi" = 6 bytes, 8 overhead x 2 (one message + 1), + max_tokens 16
    assert recs[0].tokens == 6 + 16 + 16


def test_invalid_json_line():
    e = bad(jsonl(line("a"), b"{not json", line("c")))
    assert [x.line for x in e.errors] == [2]
    assert str(e).splitlines()[1].startswith("  - line 2: not valid JSON")


def test_line_not_an_object():
    e = bad(jsonl(b"[1, 2]"))
    assert "line 1: expected a JSON object, got list" in str(e)


def test_custom_id_missing_and_empty():
    e = bad(jsonl(line(""), {k: v for k, v in line().items() if k != "custom_id"}))
    assert "line 1: custom_id must be a non-empty string, got ''" in str(e)
    assert "line 2: custom_id must be a non-empty string, got None" in str(e)


def test_custom_id_repeats():
    e = bad(jsonl(line("a1"), line("b"), line("a1")))
    assert "line 3: custom_id 'a1' repeats line 1" in str(e)
    assert e.errors_object() == {"object": "list", "data": [
        {"code": "duplicate_custom_id", "message": "custom_id 'a1' repeats line 1", "param": "custom_id", "line": 3}]}


def test_method_must_be_post():
    assert "line 1: method must be 'POST', got 'GET'" in str(bad(jsonl(line(method="GET"))))


def test_url_must_be_a_batch_endpoint():
    assert ("line 1: url '/v1/images' is not a batch endpoint; expected one of: /v1/chat/completions, "
            "/v1/completions, /v1/embeddings") in str(bad(jsonl(line(url="/v1/images"))))


def test_one_endpoint_per_file():
    e = bad(jsonl(line("a"), line("b", url="/v1/embeddings", body={"model": MODEL, "input": "x"})))
    assert "line 2: url '/v1/embeddings' differs from '/v1/chat/completions' on line 1" in str(e)


def test_model_not_allowed_for_tenant():
    body = {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]}
    assert "line 1: model 'gpt-x' is not allowed for this tenant; expected one of: llama-3.1-8b" in str(
        bad(jsonl(line(body=body))))


def test_one_model_per_file():
    body = {"model": "other", "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(BatchValidationError) as exc:
        validate_batch(jsonl(line("a"), line("b", body=body)), Limits(allowed_models=(MODEL, "other")))
    assert "line 2: model 'other' differs from 'llama-3.1-8b' on line 1" in str(exc.value)


def test_body_must_be_an_object():
    assert "line 1: body must be a JSON object, got 'x'" in str(bad(jsonl(line(body="x"))))


def test_body_checked_by_the_gateway_schema():
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "temperature": 9}
    e = bad(jsonl(line(body=body)))
    assert e.errors[0].param == "body.temperature" and e.errors[0].code == "invalid_body"
    assert "temperature" in e.errors[0].message


def test_embedding_body_checked():
    e = bad(jsonl(line(url="/v1/embeddings", body={"model": MODEL, "input": []})))
    assert "line 1: 'input' must be a non-empty string" in str(e)


def test_tokens_per_line_limit():
    body = {"model": MODEL, "messages": [{"role": "user", "content": "x" * 100}], "max_tokens": 50}
    e = bad(jsonl(line(body=body)), max_line_tokens=100)
    assert "line 1: estimated 170 tokens (prompt + max_tokens) exceeds the limit of 100 per line" in str(e)


def test_file_size_limit():
    data = jsonl(line("a"))
    e = bad(data, max_file_bytes=10)
    assert f"file: the file has {len(data)} bytes; the limit is 10" in str(e)


def test_line_count_limit():
    e = bad(jsonl(line("a"), line("b"), line("c")), max_lines=2)
    assert "file: the file has 3 lines; the limit is 2" in str(e)


def test_empty_file():
    assert "file: the file has no requests" in str(bad(b""))


def test_every_bad_line_is_listed_and_nothing_returned():
    e = bad(jsonl(line("a"), b"", line("a"), line("d", method="PUT"), line("e", url="/v2/x")))
    assert [x.line for x in e.errors] == [2, 3, 4, 5]
    assert str(e).splitlines()[0] == "invalid batch input file: 4 problems"
