"""OpenAI's Files and Batch APIs for the gateway's tenants, over the batch runtime in ``serving/batch``.

Routes (all behind the tenant's API key; a tenant sees only its own files and batches, anything else is 404 as if it
did not exist): ``POST /v1/files`` (multipart ``file`` + ``purpose=batch``), ``GET /v1/files/{id}``,
``GET /v1/files/{id}/content``, ``DELETE /v1/files/{id}``, ``POST /v1/batches``, ``GET /v1/batches``,
``GET /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel``.

Storage (one bucket): an uploaded file is ``files/<tenant>/<file_id>`` with its File object beside it
(``<file_id>.json``); a batch is the folder ``<prefix><batch_id>/`` of ``serving/batch/shards.py`` whose manifest
carries the tenant, and ``<prefix>index/<tenant>/<newest-first key>`` lists a tenant's batches. The output and error
files of a batch are ``file-<batch hex>-output`` / ``-errors``, served from the batch's assembled files.

``POST /v1/batches`` validates every line (``serving.batch.validate``) before anything is reserved or queued, then
reserves the batch's estimated tokens in the tenant's daily batch budget (Redis, ``batchTokensPerDay``), then submits
(manifest first, then one SQS message per shard). S3/SQS failures answer 503; a failure after the manifest marks the
batch ``failed`` and gives the reservation back.

Backends (``batch.backends``, by the batch's model): a model without an entry runs on the cluster queue
(``batch.queueUrl``); ``sagemaker-async`` sends the shards to the backend's own queue with the endpoint in every
message (CPU dispatcher workers); ``bedrock`` runs the batch as one Bedrock batch inference job
(``serving/batch/bedrock.py``): chat completions only, at least ``minRecords`` lines (checked before anything is
reserved or written), a refused ``CreateModelInvocationJob`` leaves a ``failed`` batch with the reason and the budget
given back; ``GET /v1/batches/{id}`` polls the job and assembles the results once it ends; cancel stops the job.
"""

from __future__ import annotations

import copy
import re
import secrets
import time
from typing import Any

import anyio
import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from serving.batch import bedrock as bedrock_batch
from serving.batch.finalize import finalize
from serving.batch.shards import (
    Layout,
    batch_created_ms,
    claim,
    get_json,
    new_batch_id,
    put_json,
    submit,
    transition,
)
from serving.batch.validate import BatchValidationError, Limits, validate_batch
from serving.gateway.api_errors import ApiError
from serving.gateway.auth import Tenant
from serving.gateway.config import (
    BedrockBatchBackend,
    GatewayConfig,
    SageMakerAsyncBackend,
)

JSON = "application/json"
_DOWNLOAD_CHUNK_BYTES = 1024 * 1024
UPLOAD_PART_BYTES = 8 * 1024 * 1024
"""S3 multipart part size of a streamed upload: an upload holds at most about one part in memory (S3's smallest
part is 5 MiB; 8 MiB parts reach the 200 MB file limit in 25 parts, far below S3's 10,000)."""
COMPLETION_WINDOW = "24h"
WINDOW_SECONDS = 24 * 3600
_FILE_ID = re.compile(r"^file-[0-9a-f]{24}$")
_RESULT_ID = re.compile(r"^file-([0-9a-f]{28})-(output|errors)$")
_BATCH_ID = re.compile(r"^batch_([0-9a-f]{28})$")
"""The ids of :func:`serving.batch.shards.new_batch_id`."""
_MAX_MS = 16 ** 12 - 1
_METADATA_KEYS, _METADATA_KEY_CHARS, _METADATA_VALUE_CHARS = 16, 64, 512
"""OpenAI's metadata limits: 16 pairs, keys up to 64 characters, values up to 512."""


class StorageUnavailable(Exception):
    """S3, SQS or the budget store failed (answered 503)."""


def _not_found(what: str, ident: str, param: str | None = None) -> ApiError:
    return ApiError(404, f"No {what} with id {ident[:80]!r} (or this API key may not see it).", "not_found", param)


def _client_error(exc: Exception) -> bool:
    """True for an S3 'no such key' (a 404 to the client); anything else from AWS is a 503."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
    return code in ("NoSuchKey", "404", "NotFound")


class BatchApi:
    """The Files and Batch endpoints of one gateway replica (blocking AWS calls run in worker threads)."""

    def __init__(self, cfg: GatewayConfig, keys, redis, *, s3=None, sqs=None, bedrock=None):
        self.cfg = cfg
        self.b = cfg.batch
        self.keys = keys
        self.redis = redis
        if s3 is None or sqs is None:
            import boto3

            s3 = s3 or boto3.client("s3", region_name=self.b.region)
            sqs = sqs or boto3.client("sqs", region_name=self.b.region)
        self.s3, self.sqs = s3, sqs
        self.bucket = self.b.bucket or ""
        self.root = self.b.prefix.rstrip("/")
        self.bedrock = bedrock
        """A ``bedrock`` client for every Region (tests); None: one client per Region, made on first use."""
        self._bedrock_clients: dict[str | None, Any] = {}
        self.part_bytes = UPLOAD_PART_BYTES
        """Part size of a streamed ``POST /v1/files`` upload (the most of a file held in memory at once)."""

    def _bedrock_for(self, region: str | None):
        if self.bedrock is not None:
            return self.bedrock
        if region not in self._bedrock_clients:
            import boto3

            self._bedrock_clients[region] = boto3.client("bedrock", region_name=region)
        return self._bedrock_clients[region]

    def routes(self) -> list:
        from starlette.routing import Route

        return [
            Route("/v1/files", self._wrap(self.create_file), methods=["POST"]),
            Route("/v1/files/{file_id}", self._wrap(self.retrieve_file), methods=["GET"]),
            Route("/v1/files/{file_id}", self._wrap(self.delete_file), methods=["DELETE"]),
            Route("/v1/files/{file_id}/content", self._wrap(self.file_content), methods=["GET"]),
            Route("/v1/batches", self._wrap(self.create_batch), methods=["POST"]),
            Route("/v1/batches", self._wrap(self.list_batches), methods=["GET"]),
            Route("/v1/batches/{batch_id}", self._wrap(self.retrieve_batch), methods=["GET"]),
            Route("/v1/batches/{batch_id}/cancel", self._wrap(self.cancel_batch), methods=["POST"]),
        ]

    def _wrap(self, handler):
        async def endpoint(request: Request) -> Response:
            tenant = self.keys.authenticate(request.headers.get("authorization"))
            if tenant is None:
                return ApiError(401, "Invalid or missing API key.", "invalid_api_key",
                                type_="authentication_error").response()
            try:
                return await handler(request, tenant)
            except ApiError as exc:
                return exc.response()
            except ClientDisconnect:
                return Response(status_code=499)
            except StorageUnavailable as exc:
                return ApiError(503, f"Batch storage is temporarily unavailable ({exc}); nothing was changed, retry "
                                     f"shortly.", "storage_unavailable", type_="api_error",
                                headers={"retry-after": "5"}).response()

        return endpoint

    async def _aws(self, fn, *args, **kw):
        """Run a blocking AWS call in a thread; a missing key raises KeyError, any other failure StorageUnavailable."""
        from botocore.exceptions import BotoCoreError, ClientError

        def call():
            return fn(*args, **kw)

        try:
            return await anyio.to_thread.run_sync(call)
        except ClientError as exc:
            if _client_error(exc):
                raise KeyError(str(exc)) from None
            raise StorageUnavailable(exc.response.get("Error", {}).get("Code", "error")) from None
        except BotoCoreError as exc:
            raise StorageUnavailable(type(exc).__name__) from None

    # --- files ---------------------------------------------------------------------------------------------------
    def _file_key(self, tenant: Tenant, file_id: str) -> str:
        return f"files/{tenant.name}/{file_id}"

    async def create_file(self, request: Request, tenant: Tenant) -> Response:
        """Stream the upload into S3 part by part (memory bounded by one part, whatever the file's size); the object
        appears only when the multipart upload completes, and any failure aborts it."""
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            raise ApiError(400, "POST /v1/files takes multipart/form-data with the fields 'file' and 'purpose'.",
                           "invalid_content_type")
        cap = self.b.max_file_bytes + 64 * 1024
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise self._too_large(int(declared))
        file_id = f"file-{secrets.token_hex(12)}"
        key = self._file_key(tenant, file_id)
        sink = _S3Upload(self, key, self.part_bytes)
        form = _FormStream(ctype, sink, max_file_bytes=self.b.max_file_bytes)
        try:
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > cap:
                    raise self._too_large(size)
                form.write(chunk)
                if form.file_bytes > self.b.max_file_bytes:
                    raise self._too_large(form.file_bytes)
                await sink.drain()
            form.finalize()
            purpose = form.fields.get("purpose", b"").decode("utf-8", "replace")
            if purpose != "batch":
                raise ApiError(400, f"purpose {purpose!r} is not supported; this gateway accepts purpose 'batch'.",
                               "invalid_purpose", "purpose")
            if not form.has_file:
                raise ApiError(400, "The multipart field 'file' is missing.", "missing_file", "file")
            if not form.nonblank:
                raise ApiError(400, "The file is empty.", "empty_file", "file")
            await sink.close()
        except BaseException:
            await sink.abort()
            raise
        obj = {"id": file_id, "object": "file", "bytes": form.file_bytes, "created_at": int(time.time()),
               "filename": form.filename or "input.jsonl", "purpose": "batch", "status": "processed",
               "status_details": None, "expires_at": None}
        await self._aws(put_json, self.s3, self.bucket, key + ".json", obj)
        return _json(obj)

    def _too_large(self, size: int) -> ApiError:
        return ApiError(413, f"The file has {size} bytes; the limit is {self.b.max_file_bytes} "
                             f"(batch.maxFileBytes).", "file_too_large", "file")

    async def _file(self, tenant: Tenant, file_id: str) -> tuple[dict[str, Any], str]:
        """The File object and its S3 key, for an uploaded file or a batch's output/error file."""
        m = _RESULT_ID.match(file_id)
        if m:
            manifest = await self._manifest(tenant, f"batch_{m.group(1)}", what="file", ident=file_id)
            key = manifest.get("output_key" if m.group(2) == "output" else "error_key")
            if not key:
                raise _not_found("file", file_id)
            try:
                head = await self._aws(self.s3.head_object, Bucket=self.bucket, Key=key)
            except KeyError:
                raise _not_found("file", file_id) from None
            return ({"id": file_id, "object": "file", "bytes": head["ContentLength"],
                     "created_at": manifest.get("completed_at") or manifest.get("cancelled_at") or
                     manifest["created_at"], "filename": f"batch_{m.group(1)}_{m.group(2)}.jsonl",
                     "purpose": "batch_output", "status": "processed", "status_details": None,
                     "expires_at": None}, key)
        if not _FILE_ID.match(file_id):
            raise _not_found("file", file_id)
        key = self._file_key(tenant, file_id)
        try:
            return await self._aws(get_json, self.s3, self.bucket, key + ".json"), key
        except KeyError:
            raise _not_found("file", file_id) from None

    async def retrieve_file(self, request: Request, tenant: Tenant) -> Response:
        obj, _ = await self._file(tenant, request.path_params["file_id"])
        return _json(obj)

    async def file_content(self, request: Request, tenant: Tenant) -> Response:
        file_id = request.path_params["file_id"]
        _, key = await self._file(tenant, file_id)
        try:
            got = await self._aws(self.s3.get_object, Bucket=self.bucket, Key=key)
        except KeyError:
            raise _not_found("file", file_id) from None
        body = got["Body"]

        async def chunks():  # streamed: a 200 MB output file is never held whole in memory
            try:
                while piece := await anyio.to_thread.run_sync(body.read, _DOWNLOAD_CHUNK_BYTES):
                    yield piece
            finally:
                body.close()

        headers = {"content-length": str(got["ContentLength"])} if "ContentLength" in got else None
        return StreamingResponse(chunks(), media_type="application/jsonl", headers=headers)

    async def delete_file(self, request: Request, tenant: Tenant) -> Response:
        file_id = request.path_params["file_id"]
        if not _FILE_ID.match(file_id):  # output/error files belong to their batch
            raise _not_found("file", file_id)
        _, key = await self._file(tenant, file_id)
        await self._aws(self.s3.delete_object, Bucket=self.bucket, Key=key)
        await self._aws(self.s3.delete_object, Bucket=self.bucket, Key=key + ".json")
        return _json({"id": file_id, "object": "file", "deleted": True})

    # --- batches -------------------------------------------------------------------------------------------------
    def _layout(self, batch_id: str) -> Layout:
        return Layout.of(self.bucket, batch_id, self.root)

    def _index_key(self, tenant: Tenant, batch_id: str) -> str:
        ms = batch_created_ms(batch_id) or 0
        return f"{self.root}/index/{tenant.name}/{_MAX_MS - ms:012x}_{batch_id}"

    async def _manifest(self, tenant: Tenant, batch_id: str, *, what: str = "batch",
                        ident: str | None = None) -> dict[str, Any]:
        if not _BATCH_ID.match(batch_id):
            raise _not_found(what, ident or batch_id)
        try:
            manifest = await self._aws(get_json, self.s3, self.bucket, self._layout(batch_id).manifest)
        except KeyError:
            raise _not_found(what, ident or batch_id) from None
        if manifest.get("tenant") != tenant.name:
            raise _not_found(what, ident or batch_id)
        return manifest

    async def _json_body(self, request: Request) -> dict[str, Any]:
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > 1024 * 1024:
                raise ApiError(413, "The request body is larger than 1 MiB.", "request_too_large")
        try:
            body = orjson.loads(raw or b"{}")
        except orjson.JSONDecodeError:
            raise ApiError(400, "The request body is not valid JSON.", "invalid_json") from None
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object.", "invalid_type")
        return body

    def _check_create(self, body: dict[str, Any]) -> None:
        fid = body.get("input_file_id")
        if not isinstance(fid, str) or not fid:
            raise ApiError(400, "'input_file_id' is required: the id of a file uploaded with purpose 'batch'.",
                           "missing_required_parameter", "input_file_id")
        endpoint = body.get("endpoint")
        if endpoint not in self.b.endpoints:
            raise ApiError(400, f"endpoint {endpoint!r} is not supported; expected one of: "
                                f"{', '.join(self.b.endpoints)}.", "invalid_endpoint", "endpoint")
        window = body.get("completion_window")
        if window != COMPLETION_WINDOW:
            raise ApiError(400, f"completion_window {window!r} is not supported; expected '24h'.",
                           "invalid_completion_window", "completion_window")
        meta = body.get("metadata")
        if meta is not None:
            ok = (isinstance(meta, dict) and len(meta) <= _METADATA_KEYS and
                  all(isinstance(k, str) and len(k) <= _METADATA_KEY_CHARS and isinstance(v, str) and
                      len(v) <= _METADATA_VALUE_CHARS for k, v in meta.items()))
            if not ok:
                raise ApiError(400, "metadata must be an object of at most 16 string pairs (keys up to 64 "
                                    "characters, values up to 512).", "invalid_metadata", "metadata")

    def _models(self, tenant: Tenant) -> tuple[str, ...]:
        allowed = self.b.models if self.b.models is not None else (
            list(self.cfg.routes) + [n for n in self.b.backends if n not in self.cfg.routes])
        if tenant.limits.models is not None:
            allowed = [m for m in allowed if m in tenant.limits.models]
        return tuple(allowed)

    async def create_batch(self, request: Request, tenant: Tenant) -> Response:
        body = await self._json_body(request)
        self._check_create(body)
        file_obj, key = await self._file(tenant, body["input_file_id"])
        if file_obj.get("purpose") != "batch":
            raise ApiError(400, f"file {body['input_file_id']!r} has purpose {file_obj.get('purpose')!r}; a batch "
                                f"input needs purpose 'batch'.", "invalid_purpose", "input_file_id")
        got = await self._aws(self.s3.get_object, Bucket=self.bucket, Key=key)
        data = await anyio.to_thread.run_sync(got["Body"].read)
        limits = Limits(allowed_models=self._models(tenant), max_file_bytes=self.b.max_file_bytes,
                        max_lines=self.b.max_lines, max_line_tokens=self.b.max_line_tokens)
        try:
            records = await anyio.to_thread.run_sync(validate_batch, data, limits)
        except BatchValidationError as exc:
            raise ApiError(400, str(exc), "invalid_batch_input", "input_file_id",
                           extra={"errors": exc.errors_object()}) from None
        if records[0].url != body["endpoint"]:
            raise ApiError(400, f"the file's lines call {records[0].url!r} but the batch's endpoint is "
                                f"{body['endpoint']!r}.", "mismatched_endpoint", "endpoint")
        backend = self.b.backends.get(str(records[0].body["model"]))
        prepared = None
        if isinstance(backend, BedrockBatchBackend):
            prepared = await anyio.to_thread.run_sync(self._bedrock_check, records, backend)
        tokens = sum(r.tokens for r in records)
        batch_id = new_batch_id()
        reservation = await self._reserve(tenant, tokens)
        extra = {"tenant": tenant.name, "input_file_id": body["input_file_id"],
                 "completion_window": COMPLETION_WINDOW, "reservation": reservation}
        if isinstance(backend, BedrockBatchBackend):
            return await self._create_bedrock(tenant, batch_id, records, data, prepared, backend, body, extra)
        queue_url, message_extra = self.b.queue_url or "", None
        if isinstance(backend, SageMakerAsyncBackend):
            queue_url = backend.queue_url or ""
            message_extra = {"backend": {"kind": "sagemaker-async", "endpointName": backend.endpoint_name,
                                         "region": backend.region,
                                         "invocationTimeoutSeconds": backend.invocation_timeout_seconds}}
        try:
            await self._aws(put_json, self.s3, self.bucket, self._index_key(tenant, batch_id), {"id": batch_id})
            manifest = await anyio.to_thread.run_sync(lambda: submit(
                _Guard(self.s3), _Guard(self.sqs), bucket=self.bucket, queue_url=queue_url,
                batch_id=batch_id, records=records, input_bytes=data, metadata=body.get("metadata"),
                max_records=self.b.shard_records, max_tokens=self.b.shard_tokens, root=self.root, extra=extra,
                **({"message_extra": message_extra} if message_extra else {})))
        except (_SubmitFailed, StorageUnavailable, RuntimeError) as exc:
            await self._release(reservation, None)
            await anyio.to_thread.run_sync(self._mark_failed, batch_id, str(exc))
            raise StorageUnavailable(str(exc)) from None
        return _json(self.batch_object(manifest))

    def _bedrock_check(self, records, backend: BedrockBatchBackend) -> tuple[bytes, list]:
        """The Bedrock job's records file and index, or a 400 (nothing reserved or written yet)."""
        if records[0].url != bedrock_batch.ENDPOINT:
            raise ApiError(400, f"the model {records[0].body['model']!r} runs on Bedrock batch inference, which "
                                f"takes {bedrock_batch.ENDPOINT} only, not {records[0].url!r}.",
                           "unsupported_endpoint", "endpoint")
        why = bedrock_batch.check_count(len(records), backend.min_records, backend.max_records)
        if why:
            raise ApiError(400, f"{why} (model {records[0].body['model']!r}).", "invalid_record_count",
                           "input_file_id")
        try:
            return bedrock_batch.records_file(records)
        except BatchValidationError as exc:
            raise ApiError(400, str(exc), "invalid_batch_input", "input_file_id",
                           extra={"errors": exc.errors_object()}) from None

    async def _create_bedrock(self, tenant: Tenant, batch_id: str, records, data: bytes, prepared,
                              backend: BedrockBatchBackend, body: dict[str, Any], extra: dict[str, Any]) -> Response:
        records_bytes, index = prepared
        region = backend.region or self.b.region
        client = self._bedrock_for(region)
        try:
            await self._aws(put_json, self.s3, self.bucket, self._index_key(tenant, batch_id), {"id": batch_id})
            manifest = await anyio.to_thread.run_sync(lambda: bedrock_batch.submit(
                _Guard(self.s3), client, bucket=self.bucket, batch_id=batch_id, records=records, input_bytes=data,
                records_bytes=records_bytes, index=index, model_id=backend.model_id, role_arn=backend.role_arn,
                region=region, timeout_hours=backend.timeout_hours, tags=backend.tags,
                metadata=body.get("metadata"), root=self.root, extra=extra))
        except bedrock_batch.JobCreateFailed:
            await self._release(extra["reservation"], None)
            manifest = await self._aws(get_json, self.s3, self.bucket, self._layout(batch_id).manifest)
            return _json(self.batch_object(manifest))
        except (_SubmitFailed, StorageUnavailable) as exc:
            await self._release(extra["reservation"], None)
            await anyio.to_thread.run_sync(self._mark_failed, batch_id, str(exc))
            raise StorageUnavailable(str(exc)) from None
        return _json(self.batch_object(manifest))

    async def _poll_bedrock(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Poll a Bedrock batch's job and settle the manifest; gives back the budget of records that did not run."""
        client = self._bedrock_for(manifest["backend"].get("region"))

        def run():
            try:
                return bedrock_batch.poll(self.s3, client, self.bucket, copy.deepcopy(manifest))
            except Exception:  # Bedrock or S3 briefly unavailable: report what the stored manifest says
                return manifest, 0

        manifest, _ = await anyio.to_thread.run_sync(run)
        return await self._settle(manifest)

    def _mark_failed(self, batch_id: str, reason: str) -> None:
        """After a failed submit: a manifest already written becomes ``failed`` (workers skip its shards)."""
        lay = self._layout(batch_id)
        try:
            manifest = get_json(self.s3, self.bucket, lay.manifest)
        except Exception:
            return  # nothing was written (or S3 is down: no message was sent before the manifest either)
        try:
            if manifest["status"] not in ("failed", "cancelled", "completed"):
                transition(manifest, "failed")
                manifest["errors"] = {"object": "list", "data": [
                    {"code": "queue_unavailable", "message": f"the batch could not be queued: {reason}",
                     "param": None, "line": None}]}
                if manifest.get("reservation"):
                    manifest["reservation"]["released"] = manifest["reservation"]["tokens"]
                put_json(self.s3, self.bucket, lay.manifest, manifest)
        except Exception:
            pass

    async def retrieve_batch(self, request: Request, tenant: Tenant) -> Response:
        manifest = await self._manifest(tenant, request.path_params["batch_id"])
        if bedrock_batch.is_bedrock(manifest):
            return _json(self.batch_object(await self._poll_bedrock(manifest)))
        if manifest["status"] in ("in_progress", "cancelling"):
            manifest = await self._finalize(manifest)
        return _json(self.batch_object(await self._settle(manifest)))

    async def _finalize(self, manifest: dict[str, Any]) -> dict[str, Any]:
        def run():
            try:
                return finalize(self.s3, self.bucket, manifest["id"], root=self.root)
            except Exception:  # a transient failure: report what the manifest says
                return manifest

        return await anyio.to_thread.run_sync(run)

    async def _settle(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Give back, exactly once, the budget of the records a cancelled, expired or failed batch never ran.

        The finaliser records them (``unrun_tokens``); whichever gateway replica first reads the settled batch wins
        the conditional write of ``settled`` and releases them, so a batch cancelled from the operator CLI (which has
        no Redis) or expired by any finaliser gets its budget back the next time a gateway reads it."""
        res, unrun = manifest.get("reservation"), int(manifest.get("unrun_tokens") or 0)
        if manifest["status"] not in ("cancelled", "expired", "failed") or not res or res.get("released") or unrun <= 0:
            return manifest
        lay = self._layout(manifest["id"])
        try:
            if not await self._aws(claim, self.s3, self.bucket, lay.key("settled")):
                return manifest
        except (KeyError, StorageUnavailable):
            return manifest  # S3 briefly unavailable: the next read settles it
        res["released"] = unrun
        await self._release(res, unrun)
        try:
            await self._aws(put_json, self.s3, self.bucket, lay.manifest, manifest)
        except (KeyError, StorageUnavailable):
            pass  # the budget is back; the marker keeps it from being given back twice
        return manifest

    async def cancel_batch(self, request: Request, tenant: Tenant) -> Response:
        manifest = await self._manifest(tenant, request.path_params["batch_id"])
        if manifest["status"] in ("completed", "failed", "expired"):
            raise ApiError(409, f"batch {manifest['id']} is {manifest['status']}; only a batch in progress can be "
                                f"cancelled.", "batch_not_cancellable")
        if bedrock_batch.is_bedrock(manifest):
            client = self._bedrock_for(manifest["backend"].get("region"))
            try:
                manifest = await anyio.to_thread.run_sync(bedrock_batch.cancel, self.s3, client, self.bucket,
                                                          manifest)
            except Exception as exc:
                raise StorageUnavailable(f"Bedrock StopModelInvocationJob: {bedrock_batch.aws_reason(exc)}") from None
            return _json(self.batch_object(manifest))
        if manifest["status"] not in ("cancelling", "cancelled"):
            transition(manifest, "cancelling")
            await self._aws(put_json, self.s3, self.bucket, self._layout(manifest["id"]).manifest, manifest)
            manifest = await self._finalize(manifest)
        return _json(self.batch_object(await self._settle(manifest)))

    async def list_batches(self, request: Request, tenant: Tenant) -> Response:
        q = request.query_params
        try:
            limit = int(q.get("limit", "20"))
            if not 1 <= limit <= 100:
                raise ValueError
        except ValueError:
            raise ApiError(400, f"limit {q.get('limit')!r} must be an integer from 1 to 100.", "invalid_limit",
                           "limit") from None
        kw: dict[str, Any] = {"Bucket": self.bucket, "Prefix": f"{self.root}/index/{tenant.name}/",
                              "MaxKeys": limit + 1}
        after = q.get("after")
        if after:
            if batch_created_ms(after) is None:
                raise ApiError(400, f"after {after[:80]!r} is not a batch id.", "invalid_after", "after")
            kw["StartAfter"] = self._index_key(tenant, after)
        got = await self._aws(self.s3.list_objects_v2, **kw)
        ids = [o["Key"].rsplit("/", 1)[-1].split("_", 1)[1] for o in got.get("Contents", [])]
        data = []
        for bid in ids[:limit]:
            try:
                data.append(self.batch_object(await self._settle(await self._manifest(tenant, bid))))
            except ApiError:  # an index entry whose submit never wrote a manifest
                continue
        return _json({"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                      "last_id": data[-1]["id"] if data else None, "has_more": len(ids) > limit})

    def batch_object(self, m: dict[str, Any]) -> dict[str, Any]:
        """OpenAI's Batch object from a manifest."""
        hexid = m["id"].removeprefix("batch_")
        at = {f"{s}_at": m.get(f"{s}_at") for s in ("in_progress", "finalizing", "completed", "failed", "expired",
                                                   "cancelling", "cancelled")}
        return {"id": m["id"], "object": "batch", "endpoint": m["endpoint"], "model": m.get("model"),
                "errors": m.get("errors"), "input_file_id": m.get("input_file_id"),
                "completion_window": m.get("completion_window", COMPLETION_WINDOW), "status": m["status"],
                "output_file_id": f"file-{hexid}-output" if m.get("output_key") else None,
                "error_file_id": f"file-{hexid}-errors" if m.get("error_key") else None,
                "created_at": m["created_at"], "expires_at": m["created_at"] + WINDOW_SECONDS, **at,
                "request_counts": m.get("request_counts") or {"total": 0, "completed": 0, "failed": 0},
                "metadata": m.get("metadata") or None,
                # beyond OpenAI's shape (the SDK keeps unknown fields): shards done / failed / pending of the total
                "progress": m.get("progress") or {"shards_total": m.get("shard_count", 0), "shards_done": 0,
                                                  "shards_failed": 0, "shards_pending": m.get("shard_count", 0)}}

    # --- the daily batch token budget ----------------------------------------------------------------------------
    def _budget_key(self, tenant: str, day: str) -> str:
        return f"gw:batch-tokens:{tenant}:{day}"

    async def _reserve(self, tenant: Tenant, tokens: int) -> dict[str, Any] | None:
        limit = tenant.limits.batch_tokens_per_day
        if not limit:
            return None
        if tokens > limit:
            raise ApiError(400, f"This batch needs up to {tokens} tokens (estimated), more than this API key's "
                                f"batch budget of {limit} tokens per day; split the file.",
                           "exceeds_batch_token_budget", "input_file_id")
        day = time.strftime("%Y%m%d", time.gmtime())
        key = self._budget_key(tenant.name, day)
        try:
            used = await self.redis.incrby(key, tokens)
            if used > limit:
                await self.redis.decrby(key, tokens)
                raise ApiError(429, f"This batch needs up to {tokens} tokens (estimated); this API key has "
                                    f"{max(0, limit - used + tokens)} of its {limit} batch tokens left today (UTC).",
                               "batch_token_budget_exceeded", type_="rate_limit_error",
                               headers={"retry-after": str(86400 - int(time.time()) % 86400)})
            await self.redis.expire(key, 2 * 86400)
        except ApiError:
            raise
        except Exception as exc:
            raise StorageUnavailable(f"batch budget store: {type(exc).__name__}") from None
        return {"tenant": tenant.name, "day": day, "tokens": tokens, "released": 0}

    async def _release(self, reservation: dict[str, Any] | None, tokens: int | None) -> None:
        if not reservation:
            return
        amount = reservation["tokens"] if tokens is None else tokens
        if amount <= 0:
            return
        try:
            await self.redis.decrby(self._budget_key(reservation["tenant"], reservation["day"]), amount)
        except Exception:  # the store is down: the reservation lapses with the day's key
            pass

    async def used_today(self, tenant: str) -> int:
        """Batch tokens reserved by ``tenant`` today (UTC)."""
        v = await self.redis.get(self._budget_key(tenant, time.strftime("%Y%m%d", time.gmtime())))
        return int(v or 0)


class _SubmitFailed(Exception):
    pass


class _Guard:
    """An AWS client whose failures become :class:`_SubmitFailed` (inside ``submit``, run in a thread)."""

    def __init__(self, client):
        self._c = client

    def __getattr__(self, name):
        fn = getattr(self._c, name)

        def call(*a, **kw):
            try:
                return fn(*a, **kw)
            except Exception as exc:
                code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else ""
                raise _SubmitFailed(code or type(exc).__name__) from None

        return call


class _S3Upload:
    """One S3 object written as it arrives: a single PUT when it fits in one part, else a multipart upload of
    ``part_bytes`` parts (S3's minimum part is 5 MiB). Nothing is visible until :meth:`close`; :meth:`abort`
    drops the parts already sent."""

    def __init__(self, api: BatchApi, key: str, part_bytes: int):
        self.api, self.key, self.part_bytes = api, key, part_bytes
        self.buf = bytearray()
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.done = False

    async def _send_part(self, data: bytes) -> None:
        api = self.api
        if self.upload_id is None:
            got = await api._aws(api.s3.create_multipart_upload, Bucket=api.bucket, Key=self.key)
            self.upload_id = got["UploadId"]
        n = len(self.parts) + 1
        got = await api._aws(api.s3.upload_part, Bucket=api.bucket, Key=self.key, UploadId=self.upload_id,
                             PartNumber=n, Body=data)
        self.parts.append({"PartNumber": n, "ETag": got["ETag"]})

    async def drain(self) -> None:
        """Send every whole part buffered so far."""
        while len(self.buf) >= self.part_bytes:
            part = bytes(self.buf[:self.part_bytes])
            del self.buf[:self.part_bytes]
            await self._send_part(part)

    async def close(self) -> None:
        api = self.api
        if self.upload_id is None:
            await api._aws(api.s3.put_object, Bucket=api.bucket, Key=self.key, Body=bytes(self.buf))
        else:
            if self.buf or not self.parts:
                await self._send_part(bytes(self.buf))
            await api._aws(api.s3.complete_multipart_upload, Bucket=api.bucket, Key=self.key,
                           UploadId=self.upload_id, MultipartUpload={"Parts": self.parts})
        self.buf.clear()
        self.done = True

    async def abort(self) -> None:
        self.buf.clear()
        if self.upload_id is not None and not self.done:
            api = self.api
            with anyio.CancelScope(shield=True):
                try:
                    await api._aws(api.s3.abort_multipart_upload, Bucket=api.bucket, Key=self.key,
                                   UploadId=self.upload_id)
                except (KeyError, StorageUnavailable):
                    pass  # the bucket's lifecycle rule removes incomplete uploads


_FIELD_BYTES = 1024
"""Largest non-file form field (``purpose``)."""


class _FormStream:
    """A streaming multipart/form-data reader (python-multipart): the ``file`` part's bytes go to ``sink.buf`` as
    they arrive, small fields are kept; malformed bodies, a second file or an oversized field are a 400."""

    def __init__(self, ctype: str, sink: _S3Upload, *, max_file_bytes: int):
        from python_multipart.multipart import MultipartParser, parse_options_header

        _, params = parse_options_header(ctype)
        boundary = params.get(b"boundary")
        if not boundary:
            raise ApiError(400, "The multipart body has no boundary.", "invalid_multipart")
        self.sink, self.max_file_bytes = sink, max_file_bytes
        self.fields: dict[str, bytes] = {}
        self.filename: str | None = None
        self.has_file = self.nonblank = False
        self.file_bytes = 0
        self._hname = self._hvalue = b""
        self._headers: dict[bytes, bytes] = {}
        self._part: str | None = None
        self._in_file = False
        self._error: ApiError | None = None
        self._parser = MultipartParser(boundary, callbacks={
            "on_part_begin": self._begin, "on_header_field": self._hfield, "on_header_value": self._hval,
            "on_header_end": self._hend, "on_headers_finished": self._headers_done, "on_part_data": self._data})

    def _begin(self) -> None:
        self._headers, self._part, self._in_file = {}, None, False

    def _hfield(self, data: bytes, start: int, end: int) -> None:
        self._hname += data[start:end]

    def _hval(self, data: bytes, start: int, end: int) -> None:
        self._hvalue += data[start:end]

    def _hend(self) -> None:
        self._headers[self._hname.lower()] = self._hvalue
        self._hname = self._hvalue = b""

    def _headers_done(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        self._part = name
        if name == "file":
            if self.has_file:
                self._error = ApiError(400, "The multipart body has more than one 'file' field.", "invalid_multipart",
                                       "file")
            self.has_file = self._in_file = True
            fn = params.get(b"filename")
            self.filename = fn.decode("utf-8", "replace") if fn else None
        else:
            self.fields.setdefault(name, b"")

    def _data(self, data: bytes, start: int, end: int) -> None:
        piece = data[start:end]
        if self._in_file:
            self.file_bytes += len(piece)
            if self.file_bytes <= self.max_file_bytes:  # past it the caller answers 413 and aborts
                self.sink.buf += piece
            if not self.nonblank and piece.strip():
                self.nonblank = True
        elif self._part is not None:
            value = self.fields[self._part] + piece
            if len(value) > _FIELD_BYTES:
                self._error = ApiError(400, f"The multipart field {self._part[:40]!r} is longer than {_FIELD_BYTES} "
                                            f"bytes.", "invalid_multipart", self._part[:40])
            else:
                self.fields[self._part] = value

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, chunk: bytes) -> None:
        from python_multipart.exceptions import MultipartParseError

        try:
            self._parser.write(chunk)
        except MultipartParseError:
            raise ApiError(400, "The multipart body could not be parsed.", "invalid_multipart") from None
        self._check()

    def finalize(self) -> None:
        from python_multipart.exceptions import MultipartParseError

        try:
            self._parser.finalize()
        except MultipartParseError:
            raise ApiError(400, "The multipart body could not be parsed.", "invalid_multipart") from None
        self._check()


def _json(obj: Any) -> Response:
    return Response(orjson.dumps(obj), media_type=JSON)

