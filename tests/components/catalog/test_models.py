"""The model catalogue: facts with source and date, internally consistent."""

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
