"""The Bedrock batch backend: a batch of ``/v1/chat/completions`` lines run as one Bedrock batch inference job
(``CreateModelInvocationJob``, ``modelInvocationType`` ``Converse``) instead of on the cluster's shard queue.

Pure functions build the records file, the job request, the OpenAI state of a job and the joined results; three thin
functions do the I/O (:func:`submit`, :func:`poll`, :func:`cancel`), for the gateway and the operator CLI alike.

Layout, under the batch's folder (``batches/<batch_id>/``, beside ``manifest.json`` and ``input.jsonl``)::

    bedrock/records.json                 recordId -> custom_id and estimated tokens, in input order
    bedrock/input/records.jsonl          the job's input: {"recordId", "modelInput"} per line
    bedrock/output/<jobId>/records.jsonl.out   Bedrock's results (and manifest.json.out), written by the job
    output.jsonl, errors.jsonl           the joined results in input order, the cluster backend's line shapes

Facts (read 2026-12-06):

- Input: JSONL, one ``{"recordId", "modelInput"}`` per line, the file name ending in ``.jsonl``; with the ``Converse``
  invocation type ``modelInput`` is the Converse request body (no ``modelId``). recordId: "an alphanumeric string"
  (older revisions of the page say 11 characters); here the 1-based input line number zero-padded to 11 digits.
  https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference-data.html
- Converse jobs do not run tool calls: "Records that include toolConfig fail with a 400 error" (such lines are refused
  at submit here). https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference.html
- Output: one output file per input file, each line ``{"recordId", "modelInput", "modelOutput"}`` or ``error``
  (``{"errorCode", "errorMessage"}``) in place of ``modelOutput``; ``modelOutput`` of a Converse job is the Converse
  response body; a ``manifest.json.out`` summarises the counts. Record order is not guaranteed (the page's revisions
  disagree), so results are joined on recordId, never on position. The files are written under the output URI in a
  folder named after the job id (the last part of the job ARN); :func:`find_output` also looks further if not.
  https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference-results.html
- Quotas, per model and adjustable (Service Quotas, "Amazon Bedrock"): "Minimum number of records per batch inference
  job" (usually 100), "Records per batch inference job" (usually 50,000), "Records per input file per batch inference
  job", "Batch inference input file size" and "Batch inference job size". The defaults below are the usual values;
  set ``minRecords``/``maxRecords`` to your account's. https://docs.aws.amazon.com/general/latest/gr/bedrock.html
- API shapes (``jobName`` pattern and 63 characters, ``clientRequestToken`` pattern, ``timeoutDurationInHours``
  24..168, the ten ``ModelInvocationJobStatus`` values, ``roleArn`` and ``modelId`` patterns): botocore's ``bedrock``
  service model (botocore 1.44); the tests check requests against it with ``botocore.stub.Stubber``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Sequence
from typing import Any

from serving.aws import InvalidRequest
from serving.aws.bedrock import from_converse_response, to_converse_request
from serving.batch.shards import (
    TERMINAL,
    TRANSITIONS,
    Layout,
    get_json,
    jsonl,
    new_manifest,
    put_json,
    read_jsonl,
)
from serving.batch.shards import transition as _transition
from serving.batch.validate import BatchRecord, BatchValidationError, LineError
from serving.batch.worker import error_line, request_id

MIN_RECORDS = 100
"""Default of Bedrock's per-model quota "Minimum number of records per batch inference job"."""
MAX_RECORDS = 50_000
"""Default of Bedrock's per-model quota "Records per batch inference job"."""
TIMEOUT_HOURS = 24
"""Default ``timeoutDurationInHours`` (OpenAI's 24 h completion window)."""
TIMEOUT_HOURS_RANGE = (24, 168)
"""``timeoutDurationInHours`` bounds in the service model."""
RECORD_ID_DIGITS = 11
ENDPOINT = "/v1/chat/completions"
"""The one endpoint the Bedrock backend runs (Converse is a chat API)."""
RECORDS_FILE = "records.jsonl"
EXPIRED_MESSAGE = "This request could not be executed before the job's timeout (timeoutDurationInHours) expired."

JOB_NAME_PATTERN = r"[a-zA-Z0-9]{1,63}(-*[a-zA-Z0-9\+\-\.]){0,63}"
CLIENT_TOKEN_PATTERN = r"[a-zA-Z0-9]{1,256}(-*[a-zA-Z0-9]){0,256}"
ROLE_ARN_PATTERN = r"arn:aws(-[^:]+)?:iam::[0-9]{12}:role/.+"
"""The service model's ``roleArn`` pattern, with the account required."""
MODEL_ID_PATTERN = (
    r"(arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:(([0-9]{12}:custom-model/[a-z0-9-]{1,63}[.]{1}[a-z0-9-:]{1,63}/"
    r"[a-z0-9]{12}$)|(:foundation-model/([a-z0-9-]{1,63}[.]{1}[a-z0-9-]{1,63}([.]?[a-z0-9-]{1,63})"
    r"([:][a-z0-9-]{1,63}){0,2})|(([0-9a-zA-Z][_-]?)+)$)|([0-9]{12}:(inference-profile|"
    r"application-inference-profile)/[a-zA-Z0-9-:.]+$)))|([a-z0-9-]{1,63}[.]{1}[a-z0-9-]{1,63}([.]?[a-z0-9-]{1,63})"
    r"([:][a-z0-9-]{1,63}){0,2})|(([0-9a-zA-Z][_-]?)+)")
"""The service model's ``modelId`` pattern of ``CreateModelInvocationJob``."""

STATUS_MAP: dict[str, str] = {
    "Submitted": "validating", "Validating": "validating",
    "Scheduled": "in_progress", "InProgress": "in_progress",
    "Completed": "completed", "PartiallyCompleted": "completed",
    "Failed": "failed", "Stopping": "cancelling", "Stopped": "cancelled", "Expired": "expired",
}
"""Every ``ModelInvocationJobStatus`` -> OpenAI's batch state. ``PartiallyCompleted`` (some records failed) is a
completed batch whose failed records are error lines."""


class JobCreateFailed(Exception):
    """``CreateModelInvocationJob`` refused the job; the batch's manifest is ``failed`` with the reason."""


# --- pure: records, job request, states, results -------------------------------------------------------------------
def record_id(line: int) -> str:
    """The recordId of an input line (1-based): the line number zero-padded to 11 digits."""
    return f"{line:0{RECORD_ID_DIGITS}d}"


def _jsonable(value: Any) -> Any:
    """Converse's blobs (image bytes) as base64 strings, as the JSON body of the API carries them."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def model_input(body: dict[str, Any]) -> dict[str, Any]:
    """The Converse request body of one chat-completions body (the gateway's Converse mapping, without modelId).
    Raises :class:`serving.aws.InvalidRequest` for what Converse or a Converse batch job cannot run."""
    if body.get("tools") and body.get("tool_choice") != "none":
        raise InvalidRequest("tools: Bedrock batch jobs of the Converse type do not run tool calls", param="tools")
    req = to_converse_request("batch", body)
    req.pop("modelId")
    return _jsonable(req)


def check_count(n: int, min_records: int, max_records: int) -> str | None:
    """Why ``n`` records cannot be one job, or None."""
    if n < min_records:
        return (f"the file has {n} requests; a Bedrock batch job needs at least {min_records} (the quota "
                f"'Minimum number of records per batch inference job'): add requests, or use a real-time route")
    if n > max_records:
        return f"the file has {n} requests; a Bedrock batch job takes at most {max_records}: split the file"
    return None


def records_file(records: Sequence[BatchRecord]) -> tuple[bytes, list[list[Any]]]:
    """The job's input file and its index ``[[recordId, custom_id, tokens], ...]`` in input order. Raises
    :class:`BatchValidationError` listing every line Bedrock cannot run (nothing is written)."""
    lines, index, errors = [], [], []
    for r in records:
        if r.url != ENDPOINT:
            errors.append(LineError(r.line, "unsupported_endpoint", f"url {r.url!r}: the Bedrock backend runs "
                                                                    f"{ENDPOINT} only", "url"))
            continue
        try:
            lines.append({"recordId": record_id(r.line), "modelInput": model_input(r.body)})
        except InvalidRequest as exc:
            errors.append(LineError(r.line, "unsupported_by_backend", f"not supported by Bedrock batch: {exc}",
                                    f"body.{exc.param}" if exc.param else "body"))
            continue
        index.append([record_id(r.line), r.custom_id, r.tokens])
    if errors:
        raise BatchValidationError(errors[:1000], omitted=max(0, len(errors) - 1000))
    return jsonl(lines), index


def job_name(batch_id: str) -> str:
    """A ``jobName`` valid for the API (pattern, <= 63 characters), derived from the batch id."""
    return f"genai-scale-{batch_id.replace('_', '-')}"[:63]


def client_token(batch_id: str) -> str:
    """The ``clientRequestToken``: a retried create of the same batch returns the same job."""
    return batch_id.replace("_", "-")


def job_request(*, batch_id: str, model_id: str, role_arn: str, input_uri: str, output_uri: str,
                timeout_hours: int = TIMEOUT_HOURS, tags: dict[str, str] | None = None) -> dict[str, Any]:
    """The ``CreateModelInvocationJob`` parameters."""
    return {
        "jobName": job_name(batch_id), "roleArn": role_arn, "clientRequestToken": client_token(batch_id),
        "modelId": model_id, "modelInvocationType": "Converse",
        "inputDataConfig": {"s3InputDataConfig": {"s3Uri": input_uri, "s3InputFormat": "JSONL"}},
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": output_uri}},
        "timeoutDurationInHours": timeout_hours,
        "tags": [{"key": k, "value": v} for k, v in sorted((tags or {}).items())],
    }


def job_id(job_arn: str) -> str:
    """The job id: the last part of the job ARN."""
    return job_arn.rsplit("/", 1)[-1]


def openai_status(status: str) -> str:
    """OpenAI's batch state of a ``ModelInvocationJobStatus``."""
    try:
        return STATUS_MAP[status]
    except KeyError:
        raise ValueError(f"unknown Bedrock job status {status!r}; expected one of: {', '.join(STATUS_MAP)}") from None


def join(batch_id: str, index: Sequence[Sequence[Any]], output: Sequence[dict[str, Any]], *, model: str,
         created: int, missing: tuple[str, str] | None) -> tuple[list[dict], list[dict], int]:
    """Join Bedrock's output lines to the input on recordId: (output lines, error lines, tokens of the records with
    no result), both in input order, one line per custom_id at most. ``missing`` = (code, message) turns a record
    without a result into an error line; None leaves it out of both files (a cancelled batch)."""
    by_id: dict[str, dict[str, Any]] = {}
    for line in output:
        rid = line.get("recordId")
        if isinstance(rid, str) and rid not in by_id:
            by_id[rid] = line
    out, err, unrun = [], [], 0
    for rid, cid, tokens in index:
        got = by_id.get(rid)
        rq = request_id(batch_id, cid)
        if got is not None and isinstance(got.get("modelOutput"), dict):
            body = from_converse_response(got["modelOutput"], model, created=created)
            body["id"] = "chatcmpl-" + hashlib.sha256(rq.encode()).hexdigest()[:24]
            out.append({"id": rq, "custom_id": cid, "response": {"status_code": 200, "request_id": rq, "body": body},
                        "error": None})
        elif got is not None:
            e = got.get("error") if isinstance(got.get("error"), dict) else {}
            status = e.get("errorCode") if isinstance(e.get("errorCode"), int) else 500
            msg = str(e.get("errorMessage") or "Bedrock returned neither modelOutput nor error for this record")
            err.append(error_line(batch_id, cid, f"bedrock_{status}", msg, {
                "status_code": status, "request_id": rq, "body": {"error": {"message": msg, "type": "bedrock_error",
                                                                              "param": None, "code": status}}}))
        else:
            unrun += int(tokens)
            if missing is not None:
                err.append(error_line(batch_id, cid, *missing))
    return out, err, unrun


# --- I/O: the S3 layout, the job, the manifest -----------------------------------------------------------------------
def keys(layout: Layout) -> dict[str, str]:
    return {"index": layout.key("bedrock/records.json"), "input": layout.key(f"bedrock/input/{RECORDS_FILE}"),
            "output": layout.key("bedrock/output/")}


def submit(s3, bedrock, *, bucket: str, batch_id: str, records: Sequence[BatchRecord], input_bytes: bytes,
           records_bytes: bytes, index: list[list[Any]], model_id: str, role_arn: str, region: str | None,
           timeout_hours: int = TIMEOUT_HOURS, tags: dict[str, str] | None = None,
           metadata: dict[str, str] | None = None, root: str = "batches",
           extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the batch's files and manifest (``validating``), then create the job and record its ARN.

    S3 failures propagate (nothing was created at Bedrock). A refused create marks the manifest ``failed`` with the
    reason and raises :class:`JobCreateFailed`. If the manifest cannot record the created job, the job is stopped
    and the S3 error propagates, so no job runs unrecorded.
    """
    layout = Layout.of(bucket, batch_id, root)
    k = keys(layout)
    manifest = new_manifest(batch_id, records[0].url, str(records[0].body["model"]), [list(records)], layout,
                            metadata=metadata)
    manifest.update(extra or {})
    manifest["backend"] = {"kind": "bedrock", "modelId": model_id, "region": region, "jobName": job_name(batch_id),
                           "jobArn": None, "jobStatus": None, "inputKey": k["input"], "outputPrefix": k["output"],
                           "indexKey": k["index"]}
    s3.put_object(Bucket=bucket, Key=layout.input, Body=input_bytes)
    put_json(s3, bucket, k["index"], {"records": index})
    s3.put_object(Bucket=bucket, Key=k["input"], Body=records_bytes)
    put_json(s3, bucket, layout.manifest, manifest)
    from botocore.exceptions import BotoCoreError, ClientError

    req = job_request(batch_id=batch_id, model_id=model_id, role_arn=role_arn,
                      input_uri=f"s3://{bucket}/{k['input']}", output_uri=f"s3://{bucket}/{k['output']}",
                      timeout_hours=timeout_hours,
                      tags={**(tags or {}), "genai-scale:batch-id": batch_id,
                            "genai-scale:tenant": str(manifest.get("tenant") or "operator")})
    try:
        arn = bedrock.create_model_invocation_job(**req)["jobArn"]
    except (ClientError, BotoCoreError) as exc:
        reason = aws_reason(exc)
        _transition(manifest, "failed")
        manifest["errors"] = {"object": "list", "data": [
            {"code": "bedrock_job_not_created", "message": f"Bedrock did not create the batch job: {reason}",
             "param": None, "line": None}]}
        put_json(s3, bucket, layout.manifest, manifest)
        raise JobCreateFailed(reason) from None
    manifest["backend"]["jobArn"] = arn
    manifest["backend"]["jobStatus"] = "Submitted"
    try:
        put_json(s3, bucket, layout.manifest, manifest)
    except Exception:
        try:
            bedrock.stop_model_invocation_job(jobIdentifier=arn)
        except Exception:
            pass
        raise
    return manifest


def aws_reason(exc: Exception) -> str:
    err = getattr(exc, "response", {}).get("Error", {}) if hasattr(exc, "response") else {}
    if err:
        return f"{err.get('Code', 'error')}: {err.get('Message', '')}".rstrip(": ")
    return type(exc).__name__


def _move(manifest: dict[str, Any], to: str) -> None:
    """Walk the batch state machine to ``to`` through the states between (validating -> in_progress -> finalizing
    -> completed); a batch being cancelled can only end ``cancelled``."""
    if manifest["status"] == "cancelling":
        if to not in TERMINAL:
            return
        to = "cancelled"
    path = {"completed": ("in_progress", "finalizing", "completed"), "expired": ("in_progress", "expired"),
            "cancelled": ("cancelling", "cancelled"), "failed": ("failed",), "in_progress": ("in_progress",),
            "cancelling": ("cancelling",)}[to]
    for step in path:
        if step in TRANSITIONS[manifest["status"]]:
            _transition(manifest, step)


def find_output(s3, bucket: str, output_prefix: str, job_arn: str) -> str | None:
    """The key of the job's results file: ``<output prefix><job id>/records.jsonl.out``, else any
    ``records.jsonl.out`` under the prefix (a layout change at Bedrock), else None."""
    from botocore.exceptions import ClientError

    key = f"{output_prefix}{job_id(job_arn)}/{RECORDS_FILE}.out"
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return key
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=output_prefix):
        found += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(f"/{RECORDS_FILE}.out")]
    return min(found) if found else None


def sync(s3, bucket: str, manifest: dict[str, Any], job: dict[str, Any], *,
         now: float | None = None) -> tuple[dict[str, Any], int]:
    """Apply one ``GetModelInvocationJob`` answer to a Bedrock batch's manifest (written back when it changed).

    Returns the manifest and the estimated tokens of the records that did not run when a ``failed``, ``expired``
    or ``cancelled`` batch settles, also stored as ``unrun_tokens`` (the gateway gives them back to the tenant's
    budget exactly once, guarded by the batch's ``settled`` marker; the CLI, which has no Redis, leaves that to the
    gateway that next reads the batch).
    """
    if manifest["status"] in TERMINAL:
        return manifest, 0
    be = manifest["backend"]
    before = json.dumps(manifest, sort_keys=True)
    be["jobStatus"], be["message"] = job.get("status"), job.get("message")
    to = openai_status(str(job.get("status")))
    counts = {"total": manifest["record_count"], "completed": int(job.get("successRecordCount") or 0),
              "failed": int(job.get("errorRecordCount") or 0)}
    layout = Layout(bucket, manifest["prefix"])
    release = 0
    if to in ("validating", "in_progress", "cancelling"):
        if to != "validating":
            _move(manifest, to)
        manifest["request_counts"] = counts
    elif to == "failed" and manifest["status"] != "cancelling":
        _move(manifest, "failed")
        manifest["errors"] = {"object": "list", "data": [
            {"code": "bedrock_job_failed", "message": f"the Bedrock batch job failed: {job.get('message') or ''}"
             .rstrip(": "), "param": None, "line": None}]}
        manifest["request_counts"] = counts
        release = sum(int(s["tokens"]) for s in manifest["shards"])
    else:
        created = int(now if now is not None else time.time())
        index = get_json(s3, bucket, be["indexKey"])["records"]
        key = find_output(s3, bucket, be["outputPrefix"], be["jobArn"]) if be.get("jobArn") else None
        lines = read_jsonl(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) if key else []
        final = "cancelled" if manifest["status"] == "cancelling" or to in ("cancelled", "failed") else to
        missing = {"completed": ("missing_result", "Bedrock's output has no result for this record"),
                   "expired": ("batch_expired", EXPIRED_MESSAGE),
                   "cancelled": None}[final]
        out, err, unrun = join(manifest["id"], index, lines, model=manifest["model"], created=created,
                               missing=missing)
        s3.put_object(Bucket=bucket, Key=layout.output, Body=jsonl(out))
        s3.put_object(Bucket=bucket, Key=layout.errors, Body=jsonl(err))
        manifest["output_key"], manifest["error_key"] = layout.output, layout.errors
        manifest["request_counts"] = {"total": manifest["record_count"], "completed": len(out), "failed": len(err)}
        _move(manifest, final)
        release = unrun if final in ("expired", "cancelled") else 0
    done = manifest["status"] in TERMINAL
    manifest["progress"] = {"shards_total": 1, "shards_done": int(done and manifest["status"] != "failed"),
                            "shards_failed": int(manifest["status"] == "failed"), "shards_pending": int(not done)}
    if release:
        manifest["unrun_tokens"] = release  # given back once by the gateway that next reads the batch
    if json.dumps(manifest, sort_keys=True) != before:
        put_json(s3, bucket, layout.manifest, manifest)
    return manifest, release if manifest.get("reservation") else 0


def poll(s3, bedrock, bucket: str, manifest: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """``GetModelInvocationJob`` and :func:`sync`. A batch whose job was never created is returned as it is."""
    arn = manifest["backend"].get("jobArn")
    if manifest["status"] in TERMINAL or not arn:
        return manifest, 0
    return sync(s3, bucket, manifest, bedrock.get_model_invocation_job(jobIdentifier=arn))


def cancel(s3, bedrock, bucket: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """``StopModelInvocationJob`` and the manifest ``cancelling`` (the job goes Stopping -> Stopped; the next poll
    assembles what it finished). A job that already ended is left to the next poll."""
    from botocore.exceptions import ClientError

    if manifest["status"] in TERMINAL or manifest["status"] == "cancelling":
        return manifest
    arn = manifest["backend"].get("jobArn")
    if arn:
        try:
            bedrock.stop_model_invocation_job(jobIdentifier=arn)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ValidationException":  # e.g. the job already ended
                raise
    _transition(manifest, "cancelling")
    put_json(s3, manifest["bucket"], Layout(manifest["bucket"], manifest["prefix"]).manifest, manifest)
    return manifest


def is_bedrock(manifest: dict[str, Any]) -> bool:
    return (manifest.get("backend") or {}).get("kind") == "bedrock"
