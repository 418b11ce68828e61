import concurrent.futures as cf
import httpx
from tests.gateway.conftest import KEYS, chat
from tests.gateway.test_processes import replicas, TPM  # noqa: F401

def test_diag(replicas, redis_server, stubs):
    def cfg(c):
        c["tenants"]["limits"].update({"tiny": {"tokensPerMinute": TPM, "maxTokens": 50}})
    ports = replicas(3, cfg)
    stubs["a"].state.chunks = 50
    body = chat("hi", max_tokens=50)
    headers = {"authorization": f"Bearer {KEYS['tiny']}"}
    def one(i):
        with httpx.Client(timeout=20) as c:
            r = c.post(f"http://127.0.0.1:{ports[i % 3]}/v1/chat/completions", json=body, headers=headers)
            return r.status_code, r.text[:200], i
    with cf.ThreadPoolExecutor(24) as pool:
        res = list(pool.map(one, range(120)))
    bad = [r for r in res if r[0] not in (200, 429)]
    print("codes", sorted({r[0] for r in res}), "bad", bad[:5])
    assert not bad
