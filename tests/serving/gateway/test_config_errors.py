"""Gateway config errors: upstream paths without pydantic's union tag, 'did you mean' for typos, and cross-checks that
still run when some values are bad."""

import pytest

from serving.gateway.config import parse_config
from serving.gateway.errors import ConfigError

BASE = {"upstreams": {"a": {"kind": "openai", "baseUrl": "http://a:8000/v1", "model": "m"}},
        "routes": {"r": {"targets": [{"upstream": "a"}]}},
        "tenants": {"keys": {"t": ["0" * 64]}}}


def problems(doc) -> dict[str, str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(doc)
    return {p.path: p.expected for p in exc.value.problems}


def test_upstream_paths_have_no_union_tag_and_typos_get_a_suggestion():
    doc = {**BASE, "server": {"hostt": "0.0.0.0"},
           "upstreams": {"a": {**BASE["upstreams"]["a"], "maxConections": 3}}}
    found = problems(doc)
    assert found["server.hostt"] == 'unknown key (did you mean "host"?)'
    assert found["upstreams.a.maxConections"] == 'unknown key (did you mean "maxConnections"?)'


def test_cross_checks_run_even_when_fields_are_bad():
    doc = {**BASE, "server": {"hostt": "0.0.0.0"}, "routes": {"r": {"targets": [{"upstream": "nope"}]}}}
    found = problems(doc)
    assert "server.hostt" in found
    assert found["routes.r.targets[0].upstream"].startswith("unknown upstream")
