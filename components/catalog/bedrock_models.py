"""Bedrock models that can be bought as Provisioned Throughput, by their contextual-variant model ids.

Sources (checked 2026-11):
- Provisioned Throughput table: Amazon Bedrock user guide, "Supported Region and models for Provisioned Throughput"
  (docs.aws.amazon.com/bedrock/latest/userguide/prov-thru-supported.html). Buying PT through the API needs the
  *contextual variant* id (``amazon.nova-lite-v1:0:24k``), not the on-demand id. The rows below are the ones that page
  showed when read; its Anthropic/Meta rows past ``anthropic.claude-v2:1:18k`` were not captured, so they are absent
  here (add them with their source when needed).
- No-commitment purchase: the older revision of the same page (``pt-supported.html``) marked the Nova text models and
  Titan Text Embeddings as "no-commit: Yes" and Titan Image Generator v2 as "No"; unknown rows are ``None``.
- Cross-Region (system-defined) inference profiles: Bedrock user guide "Supported cross-Region inference profiles"
  and the Nova 2 user guide "Core inference" (``global.``/``us.amazon.nova-2-lite-v1:0``). Geography prefixes: ``us``,
  ``eu``, ``apac``, ``global``.

On-demand models serving open weights (:data:`ON_DEMAND`, :data:`HF_TO_BEDROCK`): the Bedrock model cards (read
2026-12), for pricing a Hugging Face model the stacks self-host against the Bedrock model that serves the same weights.

The application inference profile the component creates copies from the *base* model (``base_id``) or from one of
its system-defined profiles: CreateInferenceProfile's ``copyFrom`` accepts only foundation-model and
inference-profile ARNs (AWS::Bedrock::ApplicationInferenceProfile InferenceProfileModelSource, pattern
``(inference-profile|foundation-model)/...``), never a provisioned model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SOURCE = ("docs.aws.amazon.com/bedrock/latest/userguide/prov-thru-supported.html; "
          "docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-support.html; "
          "docs.aws.amazon.com/nova/latest/nova2-userguide/core-inference.html")
CHECKED = "2026-11"

Kind = Literal["text", "embedding", "image"]
Geo = Literal["us", "eu", "apac", "global"]


@dataclass(frozen=True)
class BedrockModel:
    """One Provisioned Throughput row."""

    model_id: str
    """Contextual-variant id used to buy Provisioned Throughput, e.g. ``amazon.nova-lite-v1:0:24k``."""
    base_id: str
    """On-demand model id the variant belongs to, e.g. ``amazon.nova-lite-v1:0``."""
    provider: str
    name: str
    kind: Kind
    """``text`` models answer Converse/ConverseStream; embeddings and images do not."""
    pt_regions: tuple[str, ...]
    """Regions where PT can be bought for this variant (single-Region support column)."""
    no_commit: bool | None
    """Whether a no-commitment PT purchase is offered (None: the source did not say)."""
    profiles: tuple[Geo, ...] = ()
    """Geographies with a system-defined cross-Region inference profile for ``base_id``."""
    context_tokens: int | None = None
    """Context window of the variant, from its suffix (24k -> 24,000 tokens as AWS labels it)."""


def _m(model_id: str, provider: str, name: str, kind: Kind, regions: tuple[str, ...], no_commit: bool | None,
       profiles: tuple[Geo, ...] = ()) -> BedrockModel:
    parts = model_id.split(":")
    base = ":".join(parts[:2])
    ctx = None
    if len(parts) == 3 and parts[2].endswith("k"):
        ctx = int(parts[2][:-1]) * 1000
    return BedrockModel(model_id, base, provider, name, kind, regions, no_commit, profiles, ctx)


_US_EAST_1 = ("us-east-1",)
_NOVA_GEOS: tuple[Geo, ...] = ("us", "eu", "apac")

MODELS: dict[str, BedrockModel] = {m.model_id: m for m in (
    _m("amazon.nova-2-lite-v1:0:256k", "Amazon", "Nova 2 Lite", "text", _US_EAST_1, None, ("us", "global")),
    _m("amazon.nova-lite-v1:0:24k", "Amazon", "Nova Lite", "text", _US_EAST_1, True, _NOVA_GEOS),
    _m("amazon.nova-lite-v1:0:300k", "Amazon", "Nova Lite", "text", _US_EAST_1, True, _NOVA_GEOS),
    _m("amazon.nova-micro-v1:0:24k", "Amazon", "Nova Micro", "text", _US_EAST_1, True, _NOVA_GEOS),
    _m("amazon.nova-micro-v1:0:128k", "Amazon", "Nova Micro", "text", _US_EAST_1, True, _NOVA_GEOS),
    _m("amazon.nova-pro-v1:0:24k", "Amazon", "Nova Pro", "text", _US_EAST_1, True, _NOVA_GEOS),
    _m("amazon.nova-pro-v1:0:300k", "Amazon", "Nova Pro", "text", _US_EAST_1, True, _NOVA_GEOS),
    _m("amazon.nova-canvas-v1:0", "Amazon", "Nova Canvas", "image", _US_EAST_1, None),
    _m("amazon.titan-embed-text-v1:2:8k", "Amazon", "Titan Embeddings G1 - Text", "embedding",
       ("us-east-1", "us-west-2"), True),
    _m("amazon.titan-image-generator-v2:0", "Amazon", "Titan Image Generator G1 v2", "image",
       ("us-east-1", "us-west-2"), False),
    _m("amazon.titan-embed-image-v1:0", "Amazon", "Titan Multimodal Embeddings G1", "embedding",
       ("ap-south-1", "ap-southeast-2", "ca-central-1", "eu-central-1", "eu-west-1", "eu-west-2", "eu-west-3",
        "sa-east-1", "us-east-1", "us-west-2"), None),
    _m("anthropic.claude-v2:0:100k", "Anthropic", "Claude (v2)", "text", ("us-east-1", "us-west-2"), None),
    _m("anthropic.claude-v2:0:18k", "Anthropic", "Claude (v2)", "text", ("us-east-1", "us-west-2"), None),
    _m("anthropic.claude-v2:1:18k", "Anthropic", "Claude (v2.1)", "text",
       ("eu-central-1", "us-east-1", "us-west-2"), None),
)}

# Which source Regions may call a geography's system-defined profile (profile ids are prefixed with the geography;
# a geographic profile keeps processing inside it; global covers all commercial Regions).
GEO_REGION_PREFIXES: dict[Geo, tuple[str, ...]] = {
    "us": ("us-east-", "us-west-"),
    "eu": ("eu-",),
    "apac": ("ap-",),
    "global": ("us-east-", "us-west-", "eu-", "ap-", "ca-", "sa-", "me-", "af-", "il-", "mx-"),
}


def lookup(model_id: str) -> BedrockModel | None:
    """The catalogue row for a contextual-variant id, or None."""
    return MODELS.get(model_id)


def variants_of(base_id: str) -> list[str]:
    """Contextual variants of an on-demand id (``amazon.nova-lite-v1:0`` -> its ``:24k`` / ``:300k`` rows)."""
    return sorted(m.model_id for m in MODELS.values() if m.base_id == base_id)


def geo_serves_region(geo: Geo, region: str) -> bool:
    """Whether a source Region can invoke that geography's system-defined profile."""
    return any(region.startswith(p) for p in GEO_REGION_PREFIXES[geo])


# --- on-demand models that serve an open model's weights ------------------------------------------------------------

MODEL_CARDS = "https://docs.aws.amazon.com/bedrock/latest/userguide/model-cards.html"
"""The Bedrock "models at a glance" index; each model's card gives its id, lifecycle, Regions and inference profiles."""


@dataclass(frozen=True)
class OnDemandModel:
    """A Bedrock on-demand (pay per token) model that serves the same weights as an open model on Hugging Face."""

    model_id: str
    """On-demand model id, e.g. ``meta.llama3-1-8b-instruct-v1:0``."""
    provider: str
    name: str
    hf_model: str
    """The Hugging Face model id whose weights it serves (same release, same instruct tuning)."""
    in_region: tuple[str, ...]
    """Regions where the bare ``model_id`` can be invoked on demand in that Region alone."""
    profiles: tuple[Geo, ...]
    """Geographies with a system-defined cross-Region profile (``us.`` + ``model_id``); a source Region in that
    geography invokes the model through it and pays that source Region's token price."""
    end_of_life: str | None
    """ISO date the model card gives as its end of life (None: active, no date). Past it the id stops working."""
    source: str


def _card(slug: str) -> str:
    return f"https://docs.aws.amazon.com/bedrock/latest/userguide/model-card-{slug}.html"


_US_WEST_2 = ("us-west-2",)

ON_DEMAND: dict[str, OnDemandModel] = {m.model_id: m for m in (
    OnDemandModel("meta.llama3-1-8b-instruct-v1:0", "Meta", "Llama 3.1 8B Instruct", "meta-llama/Llama-3.1-8B-Instruct",
                  _US_WEST_2, ("us",), None, _card("meta-llama-3-1-8b-instruct")),
    OnDemandModel("meta.llama3-1-70b-instruct-v1:0", "Meta", "Llama 3.1 70B Instruct",
                  "meta-llama/Llama-3.1-70B-Instruct", _US_WEST_2, ("us",), None, _card("meta-llama-3-1-70b-instruct")),
    OnDemandModel("meta.llama3-1-405b-instruct-v1:0", "Meta", "Llama 3.1 405B Instruct",
                  "meta-llama/Llama-3.1-405B-Instruct", _US_WEST_2, ("us",), "2026-07-07",
                  _card("meta-llama-3-1-405b-instruct")),
)}
"""Bedrock on-demand models of open weights the stacks serve (read 2026-12 from the model cards, :data:`MODEL_CARDS`):
launched 2024-07-23 as Meta's Llama 3.1 Instruct releases. In-Region invocation is us-west-2 only; other US Regions
(us-east-1) call them through the ``us.`` cross-Region profile, billed at the source Region's price (Bedrock pricing
page: cross-Region inference "is calculated basis the region you made the request in"). The 405B card marks it Legacy
with end of life 2026-07-07, so it is catalogued (its price is sourced) but maps no Hugging Face model."""

HF_TO_BEDROCK: dict[str, str] = {m.hf_model: m.model_id for m in ON_DEMAND.values() if m.end_of_life is None}
"""Hugging Face model id -> the Bedrock on-demand model id serving the same weights (models past their end of life
left out)."""

HF_WITHOUT_BEDROCK: dict[str, str] = {
    "meta-llama/Llama-3.1-405B-Instruct": ("meta.llama3-1-405b-instruct-v1:0 reached its end of life on 2026-07-07 "
                                           "(model card: Legacy)"),
    "mistralai/Mistral-7B-Instruct-v0.3": ("Bedrock's Mistral 7B Instruct is mistral.mistral-7b-instruct-v0:2, the "
                                           "v0.2 weights, not v0.3"),
    "Qwen/Qwen2.5-7B-Instruct": "no Qwen2.5 model in the Bedrock catalogue (its Qwen models are Qwen3, read 2026-12)",
    "Qwen/Qwen2.5-32B-Instruct": "no Qwen2.5 model in the Bedrock catalogue (its Qwen models are Qwen3, read 2026-12)",
}
"""Open models the stacks serve that have no Bedrock on-demand equivalent, with the reason."""


def on_demand_for(hf_model: str, region: str) -> str | None:
    """The Bedrock on-demand model id serving ``hf_model``'s weights that ``region`` can invoke (in-Region, or through
    a geography's system-defined profile), or None."""
    model_id = HF_TO_BEDROCK.get(hf_model)
    if model_id is None:
        return None
    row = ON_DEMAND[model_id]
    if region in row.in_region or any(geo_serves_region(g, region) for g in row.profiles):
        return model_id
    return None
