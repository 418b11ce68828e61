"""Locust load test for the OpenAI-compatible API (the gateway or a vLLM Service).

    locust -f serving/loadtest/locustfile.py --host https://<gateway> --headless -u 50 -r 5 --run-time 10m

Every user sends streaming chat completions whose prompt and output lengths follow the log-normal distributions of
:mod:`serving.loadtest.workload` (settings: LOADTEST_* environment variables), measures time to first token and
tokens per second of each stream, reports TTFT as its own Locust entry ("TTFT", so the CSV/UI show its percentiles)
and writes a JSON summary with TTFT and tokens/s percentiles to ``LOADTEST_REPORT`` (default: printed at exit).
Authentication: ``LOADTEST_API_KEY`` is sent as a bearer token. Against the local example config
(``serving/gateway/examples/local.yaml``, the stub upstream): ``LOADTEST_API_KEY=sk-local-load-test-key
LOADTEST_MODEL=assistant`` (see the gateway README, "Load test").
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

from locust import HttpUser, between, events, task

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workload import Report, Workload, parse_sse  # noqa: E402  (runs as a plain script under locust)

WORKLOAD = Workload.from_env()
REPORT = Report()
SEED = int(os.environ.get("LOADTEST_SEED", "1"))


@events.test_start.add_listener
def _start(environment, **_):
    REPORT.started = time.monotonic()


@events.test_stop.add_listener
def _stop(environment, **_):
    REPORT.ended = time.monotonic()
    summary = json.dumps(REPORT.summary(), indent=2)
    target = os.environ.get("LOADTEST_REPORT")
    if target:
        Path(target).write_text(summary + "\n")
    else:
        print(summary)


class ChatUser(HttpUser):
    """One chat client: a streamed completion, then a pause (LOADTEST_WAIT_MIN/MAX seconds)."""

    wait_time = between(float(os.environ.get("LOADTEST_WAIT_MIN", "0.5")),
                        float(os.environ.get("LOADTEST_WAIT_MAX", "2")))

    def on_start(self):
        self.rng = random.Random(SEED + id(self))
        key = os.environ.get("LOADTEST_API_KEY")
        self.headers = {"authorization": f"Bearer {key}"} if key else {}

    @task
    def chat(self):
        body, words, wanted = WORKLOAD.request(self.rng)
        start = time.perf_counter()
        with self.client.post("/v1/chat/completions", json=body, headers=self.headers, stream=True,
                              catch_response=True, name="chat (stream)") as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}")
                REPORT.failures += 1
                return
            result = parse_sse(resp.iter_lines(), lambda: time.perf_counter() - start)
            if result.error or result.first_token_at is None:
                resp.failure(result.error or "no content in the stream")
            else:
                resp.success()
                events.request.fire(request_type="TTFT", name="time to first token",
                                    response_time=result.first_token_at * 1000, response_length=0, exception=None,
                                    context={})
            REPORT.add(result, words, wanted)
