"""The model catalogue: facts with source and date, internally consistent."""

import pytest
from pydantic import ValidationError

from components.catalog import models


def test_every_row_has_source_date_and_consistent_heads():
    assert len(models.CATALOG) >= 8
    for spec in models.CATALOG.values():
        assert spec.source.startswith("huggingface.co/") and spec.checked == "2026-11"
        assert spec.attention_heads % spec.kv_heads == 0, spec.model_id  # grouped-query attention groups
        assert spec.head_dim in (64, 128), spec.model_id
        assert 0 < spec.parameters_billion < 1000


def test_known_facts_of_llama_3_1_8b():
    s = models.lookup("META-LLAMA/llama-3.1-8b-instruct")  # case-insensitive
    assert (s.layers, s.attention_heads, s.kv_heads, s.head_dim, s.max_context) == (32, 32, 8, 128, 131072)
    assert models.lookup("acme/none") is None


def test_custom_model():
    s = models.custom("acme/x", parameters_billion=1, layers=2, attention_heads=4, kv_heads=2, head_dim=64,
                      max_context=2048)
    assert s.source == "stated in the stack config"


def test_a_catalogue_row_is_model_facts_with_a_source():
    s = models.lookup("Qwen/Qwen2.5-7B-Instruct")
    assert isinstance(s, models.ModelFacts)
    assert s.facts == models.ModelFacts(parameters_billion=7.62, layers=28, attention_heads=28, kv_heads=4,
                                        head_dim=128, max_context=32768)
    assert type(s.facts) is models.ModelFacts  # without id and source


@pytest.mark.parametrize("field,value,expected", [
    ("parameters_billion", 0, "Input should be greater than 0"),
    ("parameters_billion", 6000, "Input should be less than or equal to 5000"),
    ("layers", 0, "Input should be greater than or equal to 1"),
    ("kv_heads", 0, "Input should be greater than or equal to 1"),
    ("max_context", 0, "Input should be greater than or equal to 1"),
])
def test_stated_facts_are_validated(field, value, expected):
    good = dict(parameters_billion=1, layers=2, attention_heads=4, kv_heads=2, head_dim=64, max_context=2048)
    with pytest.raises(ValidationError) as err:
        models.ModelFacts(**{**good, field: value})
    assert [(e["loc"], e["msg"]) for e in err.value.errors()] == [((field,), expected)]


def test_facts_reject_unknown_keys():
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        models.ModelFacts(parameters_billion=1, layers=2, attention_heads=4, kv_heads=2, head_dim=64, max_context=2048,
                          hidden_size=4096)
