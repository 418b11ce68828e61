"""Model catalogue: the architecture facts the fit check needs, per open-weights model.

Every row comes from the model's ``config.json`` on the Hugging Face hub (``num_hidden_layers``, ``num_attention_heads``,
``num_key_value_heads``, ``head_dim`` or ``hidden_size / num_attention_heads``, ``max_position_embeddings``) and the
parameter count shown on its model card (safetensors metadata), checked 2026-11. A model outside this table is usable
when its facts are stated in the stack config (``serving.models.<name>.modelFacts``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

CHECKED = "2026-11"


class ModelFacts(BaseModel):
    """Architecture facts of one decoder-only model: what the fit check and the vLLM settings need.

    Catalogue rows are :class:`ModelSpec` (these facts plus their source); a model outside the catalogue is described
    by these facts alone (its ``config.json`` and model card).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    parameters_billion: float = Field(gt=0, le=5000)
    """Total parameters, in billions (model card)."""
    layers: int = Field(ge=1)
    """Transformer blocks (``num_hidden_layers``)."""
    attention_heads: int = Field(ge=1)
    """Query heads (``num_attention_heads``); tensor parallelism must divide it."""
    kv_heads: int = Field(ge=1)
    """Key/value heads (``num_key_value_heads``; fewer than query heads with grouped-query attention)."""
    head_dim: int = Field(ge=1)
    """Dimension of one attention head (``head_dim``, or ``hidden_size / num_attention_heads``)."""
    max_context: int = Field(ge=1)
    """Longest context the model was trained for (``max_position_embeddings``)."""


class ModelSpec(ModelFacts):
    """A catalogue row: a model's facts with its id and where they were read."""

    model_id: str
    """Hugging Face repository id, e.g. ``meta-llama/Llama-3.1-8B-Instruct``."""
    source: str
    checked: str = CHECKED

    @property
    def facts(self) -> ModelFacts:
        """Just the architecture facts (without id and source)."""
        return ModelFacts(**self.model_dump(include=set(ModelFacts.model_fields)))


def _hf(model_id: str) -> str:
    return f"huggingface.co/{model_id} config.json and model card"


_ROWS = (
    # model id, params (B), layers, attention heads, KV heads, head dim, max context
    ("meta-llama/Llama-3.2-1B-Instruct", 1.24, 16, 32, 8, 64, 131072),
    ("meta-llama/Llama-3.2-3B-Instruct", 3.21, 28, 24, 8, 128, 131072),
    ("meta-llama/Llama-3.1-8B-Instruct", 8.03, 32, 32, 8, 128, 131072),
    ("meta-llama/Llama-3.1-70B-Instruct", 70.6, 80, 64, 8, 128, 131072),
    ("meta-llama/Llama-3.3-70B-Instruct", 70.6, 80, 64, 8, 128, 131072),
    # hidden_size 16384 / 128 heads (read 2026-12); BF16 weights ~756 GiB (812 GB): more than one 8 x H100 80 GB node,
    # served across nodes (serving.models in the scale preset)
    ("meta-llama/Llama-3.1-405B-Instruct", 406, 126, 128, 8, 128, 131072),
    ("mistralai/Mistral-7B-Instruct-v0.3", 7.25, 32, 32, 8, 128, 32768),
    ("Qwen/Qwen2.5-0.5B-Instruct", 0.494, 24, 14, 2, 64, 32768),
    ("Qwen/Qwen2.5-7B-Instruct", 7.62, 28, 28, 4, 128, 32768),
    ("Qwen/Qwen2.5-14B-Instruct", 14.8, 48, 40, 8, 128, 32768),
    ("Qwen/Qwen2.5-32B-Instruct", 32.8, 64, 40, 8, 128, 32768),
    ("Qwen/Qwen2.5-72B-Instruct", 72.7, 80, 64, 8, 128, 32768),
)

CATALOG: dict[str, ModelSpec] = {
    r[0]: ModelSpec(model_id=r[0], parameters_billion=r[1], layers=r[2], attention_heads=r[3], kv_heads=r[4],
                    head_dim=r[5], max_context=r[6], source=_hf(r[0])) for r in _ROWS
}


def lookup(model_id: str) -> ModelSpec | None:
    """The catalogue entry for a Hugging Face model id (case-insensitive), or None."""
    wanted = model_id.lower()
    return next((s for key, s in CATALOG.items() if key.lower() == wanted), None)


def custom(model_id: str, *, parameters_billion: float, layers: int, attention_heads: int, kv_heads: int,
           head_dim: int, max_context: int) -> ModelSpec:
    """Facts for a model outside the catalogue, as stated by the caller."""
    return ModelSpec(model_id=model_id, parameters_billion=parameters_billion, layers=layers,
                     attention_heads=attention_heads, kv_heads=kv_heads, head_dim=head_dim, max_context=max_context,
                     source="stated in the stack config")
