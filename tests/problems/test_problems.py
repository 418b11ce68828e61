"""The error core: rendering, structured 'concerns', pydantic conversion, did-you-mean."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from problems import MISSING, Problem, ProblemsError, did_you_mean, from_pydantic, is_within, missing, unknown_key


def test_render_lists_every_problem_with_path_value_and_expectation():
    err = ProblemsError([Problem("nodeGroups.h100.minSize", 3, "must be <= maxSize (2)"),
                         missing("nodeGroups.a10g.instanceType", "required")],
                        title="stacks/Pulumi.prod.yaml: invalid configuration", prefix="genai-scale:")
    assert str(err) == ("stacks/Pulumi.prod.yaml: invalid configuration: 2 problems\n"
                        "  - genai-scale:nodeGroups.h100.minSize = 3: must be <= maxSize (2)\n"
                        "  - genai-scale:nodeGroups.a10g.instanceType: required")


def test_a_long_value_is_cut_and_one_problem_is_singular():
    err = ProblemsError([Problem("x", "y" * 200, "shorter")])
    assert str(err).startswith("invalid arguments: 1 problem\n")
    assert "..." in str(err) and len(str(err).splitlines()[1]) < 110


def test_missing_is_a_singleton_sentinel():
    assert missing("a", "required").value is MISSING
    assert repr(MISSING) == "MISSING"


@pytest.mark.parametrize("path, ancestor, inside", [
    ("a.b", "a.b", True), ("a.b.c", "a.b", True), ("a.b[0]", "a.b", True), ("a.bc", "a.b", False),
    ("a", "a.b", False),
])
def test_is_within(path, ancestor, inside):
    assert is_within(path, ancestor) is inside


def test_a_problem_concerns_its_path_and_the_paths_its_rule_read():
    p = Problem("min_size", 3, "must be <= max_size (2)", ("max_size",))
    assert p.concerns("min_size") and p.concerns("max_size")
    assert not p.concerns("desired_size")
    # never by message text: the text names max_size, but without `related` the rule does not concern it
    assert not Problem("min_size", 3, "must be <= max_size (2)").concerns("max_size")


def test_under_prefixes_path_and_related():
    p = Problem("min_size", 3, "x", ("max_size",)).under("nodeGroups.a")
    assert p.path == "nodeGroups.a.min_size" and p.related == ("nodeGroups.a.max_size",)
    assert Problem("[2]", 1, "x").under("routes").path == "routes[2]"


def test_did_you_mean_and_unknown_key():
    assert did_you_mean("minSise", ["minSize", "maxSize"]) == ' (did you mean "minSize"?)'
    assert did_you_mean("zzz", ["minSize"]) == ""
    assert unknown_key("a.minSise", ["minSize"]).expected == 'unknown key (did you mean "minSize"?)'
    assert unknown_key("a.qqq", ["minSize", "maxSize"]).expected == "unknown key; expected one of: maxSize, minSize"


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = Field(ge=1)


class _Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    inner: list[_Inner] = []


def test_from_pydantic_paths_values_and_plain_words():
    with pytest.raises(ValidationError) as exc:
        _Outer.model_validate({"inner": [{"count": 0}, {"count": "x"}], "nmae": 1})
    found = {p.path: p for p in from_pydantic(exc.value, known_fields={"": ["name", "inner"]})}
    assert found["name"].expected == "required"
    assert found["inner[0].count"].value == 0 and found["inner[0].count"].expected == "expected a number >= 1"
    assert found["inner[1].count"].expected == "expected an integer"
    assert found["nmae"].expected == 'unknown key (did you mean "name"?)'


def test_the_core_does_not_import_pulumi():
    import subprocess
    import sys

    code = "import sys, problems; assert not [m for m in sys.modules if m.startswith('pulumi')], 'pulumi imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
