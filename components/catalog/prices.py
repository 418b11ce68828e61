"""Price catalogue: EC2 on-demand and SageMaker hosting hourly prices, the spot reference, and Bedrock token prices.

Every row carries the URL it comes from, the date the figure is stated for, and how it was obtained (``basis``). A
figure that could not be sourced is left out, and the instance types the shipped stacks use without a price are
listed in :data:`UNPRICED` with the reason (``tests/components/catalog/test_prices.py`` fails on a planned instance
type that is in neither table).

What is here and what is not (read 2026-12):
- **EC2 on-demand, us-east-1, Linux, shared tenancy.** The figures are the AWS Price List offer file for AmazonEC2
  us-east-1, version ``20260924211011``. This project did not fetch that file: the AWS pricing pages render their
  numbers client-side, and the figures were read from a public third-party table that states it checked every entry
  against that offer file version. Cross-checks: every GPU row equals the instances.vantage.sh data (built from the
  offer files) of 2026-01-21; g5.xlarge $1.006/h matches an independent June 2026 listing; the p5.48xlarge $55.04/h
  reflects AWS's June 2025 P5 price cut (older tables still show $98.32). One third-party table lists g6e.xlarge at
  $1.168/h and g6e.12xlarge at $7.008/h; the vantage data and the SageMaker prices (1.25-1.4x these EC2 figures, as
  for every other family) both support $1.861 and $10.49264, so the lower figures are treated as wrong.
- **EC2 on-demand, us-west-2 (and g6.12xlarge in us-east-1):** the GPU and Inferentia types, from the
  instances.vantage.sh data of 2026-01-21 (built from the AWS offer files; not fetched by this project). Every one
  equals its us-east-1 price. m7i (the CPU system nodes) has no us-west-2 source and is absent, not copied.
- **SageMaker hosting (``ml.*``), us-east-1:** real-time and asynchronous inference endpoints, per instance-hour,
  from the AWS Price List offer file for AmazonSageMaker as quoted by public projects that read it (usage types
  ``USE1-Host:ml.*`` and ``USE1-AsyncInf:ml.*``; not fetched by this project). The offer file prices asynchronous
  inference the same as real-time hosting (``ml.g6e.2xlarge``: $2.8026/h for both, offer published 2026-09-20; in
  eu-west-3 ``ml.g6.xlarge`` is also equal for both), so one row serves both. Where sources disagreed:
  ml.g5.xlarge is $1.408 in the offer-file quotes (about 1.4 x 1.006), $1.4084 in an AWS sample's hand-kept table
  and $1.41 rounded on pricing pages; a March 2026 blog's $1.21 matches no other source and is rejected. Some tables
  copy the EC2 price into an ``ml.*`` row (ml.inf2.8xlarge $1.968, ml.g6e.12xlarge $10.49); every SageMaker row here
  is 1.19-1.41x its EC2 instance, which the tests check. ``ml.inf2.*`` are the least certain rows (two
  transcriptions, no quoted usage type). ``ml.p4d.24xlarge`` is not priced: its SageMaker Training price after the
  2025 cut ($25.2513) was found, its hosting price was not; likewise ``ml.p5.48xlarge`` (see :data:`UNPRICED`).
- **Spot.** Spot prices move with supply and demand; no dated observed average was sourced. The reference is a
  documented typical discount (the seed's "about 70% cheaper"), with AWS's stated ceiling ("up to 90%") beside it;
  :func:`spot_usd_per_hour` applies it and says so. SageMaker inference has no spot price.
- **Bedrock tokens, us-east-1:** the Amazon Nova (v1) text models, on-demand and batch. AWS's Bedrock pricing page
  states that batch inference is priced 50% below on-demand; the per-model figures are as transcribed from that
  page by a public pricing table. Nova 2 Lite, Titan and Claude v2 prices were not sourced and are absent.

Refresh: run ``aws pricing get-products --service-code AmazonEC2 --region us-east-1 --filters
Type=TERM_MATCH,Field=instanceType,Value=<type> Type=TERM_MATCH,Field=location,Value="US East (N. Virginia)"
Type=TERM_MATCH,Field=operatingSystem,Value=Linux Type=TERM_MATCH,Field=tenancy,Value=Shared
Type=TERM_MATCH,Field=preInstalledSw,Value=NA Type=TERM_MATCH,Field=capacitystatus,Value=Used``, and
``aws ec2 describe-spot-price-history --instance-types <type> --product-descriptions Linux/UNIX --start-time <date>``
for an observed spot average; for SageMaker, ``aws pricing get-products --service-code AmazonSageMaker
--region us-east-1 --filters Type=TERM_MATCH,Field=instanceName,Value=<ml.type>
Type=TERM_MATCH,Field=regionCode,Value=us-east-1`` and read the ``Host`` and ``AsyncInf`` components. Record the
offer version or the averaging window in ``basis`` (docs/prices.md).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from components.catalog import bedrock_models

CHECKED = "2026-12-06"
"""When this catalogue was last read against its sources."""

EC2_OFFER_FILE = "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonEC2/current/us-east-1/index.json"
EC2_OFFER_VERSION = "20260924211011"
SAGEMAKER_OFFER_FILE = ("https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonSageMaker/current/us-east-1/"
                        "index.json")
VANTAGE = "https://instances.vantage.sh/aws/ec2/"
"""Per-type pages of a public table built from the AWS EC2 offer files (the data read here was generated 2026-01-21)."""
BEDROCK_PRICING_PAGE = "https://aws.amazon.com/bedrock/pricing/"
BEDROCK_TRANSCRIPTION = ("https://huggingface.co/spaces/Presidentlin/llm-pricing-calculator/commit/"
                         "915784a89ab583f94bce7cdd61d156c62b745aaa")
SPOT_PRICING_PAGE = "https://aws.amazon.com/ec2/spot/pricing/"
SEED_BATCH = "seed 003 §4.5 (BATCH INFERENCE VS REAL-TIME INFERENCE)"

Region = Literal["us-east-1", "us-west-2"]


class _Sourced(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    source: str = Field(min_length=1)
    """Where the figure comes from: an ``https://`` URL, or a seed reference (``seed NNN §x.y``)."""
    as_of: date
    """The date the source states the figure for (or, when it states none, the date it was read)."""
    basis: str = Field(min_length=10)
    """How the figure was obtained and what it means (offer version, transcription, typical vs observed)."""

    @field_validator("source")
    @classmethod
    def _url_or_seed(cls, v: str) -> str:
        if not v.startswith(("https://", "seed ")):
            raise ValueError(f"source ({v!r}) must be an https:// URL or a seed reference ('seed NNN §x.y')")
        return v


class InstancePrice(_Sourced):
    """On-demand hourly price of one instance type in one Region: EC2 (Linux, shared tenancy), or for an ``ml.*``
    type a SageMaker inference endpoint instance (real-time and asynchronous are priced the same)."""

    instance_type: str = Field(pattern=r"^(ml\.)?[a-z][a-z0-9-]*\.[0-9a-z]+$")
    region: Region
    on_demand_usd_per_hour: float = Field(gt=0, le=1000)


class SpotReference(_Sourced):
    """How spot prices are estimated from on-demand when no observed price is stored."""

    kind: Literal["typical-discount", "observed-average"]
    """``typical-discount``: a documented typical saving; ``observed-average``: a dated average of spot price
    history."""
    discount: float = Field(gt=0, lt=1)
    """Fraction below on-demand (0.70: spot costs 30% of on-demand)."""
    ceiling: float = Field(gt=0, lt=1)
    """The largest discount the provider states (AWS: up to 90%)."""


class TokenPrice(_Sourced):
    """Bedrock price of one model in one Region, USD per million tokens, on-demand and batch."""

    model_id: str = Field(min_length=3)
    """On-demand (base) model id, as in :mod:`components.catalog.bedrock_models`."""
    region: Region
    on_demand_input_per_mtok: float = Field(gt=0)
    on_demand_output_per_mtok: float = Field(gt=0)
    batch_input_per_mtok: float = Field(gt=0)
    batch_output_per_mtok: float = Field(gt=0)


_EC2_BASIS = (f"AWS Price List AmazonEC2 us-east-1 offer file version {EC2_OFFER_VERSION}, Linux shared tenancy; "
              "read from a public third-party table that states it checked each entry against that version "
              "(not fetched by this project)")


def _ec2(instance_type: str, usd: float, basis: str = _EC2_BASIS) -> InstancePrice:
    return InstancePrice(instance_type=instance_type, region="us-east-1", on_demand_usd_per_hour=usd,
                         source=EC2_OFFER_FILE, as_of=date(2026, 9, 24), basis=basis)


_VANTAGE_DATE = date(2026, 1, 21)


def _vantage(instance_type: str, usd: float, region: Region = "us-west-2") -> InstancePrice:
    basis = (f"AWS Price List AmazonEC2 {region} offer file, Linux shared tenancy, as published by "
             "instances.vantage.sh (built from the offer files) in a public snapshot generated 2026-01-21; "
             "not fetched by this project"
             + ("; equals us-east-1" if region == "us-west-2" else ""))
    return InstancePrice(instance_type=instance_type, region=region, on_demand_usd_per_hour=usd,
                         source=f"{VANTAGE}{instance_type}", as_of=_VANTAGE_DATE, basis=basis)


_SM_BASIS = ("AWS Price List AmazonSageMaker us-east-1, Hosting (USE1-Host) = asynchronous inference (USE1-AsyncInf), "
             "as quoted by public projects that read the offer file in 2026-08/09 (not fetched by this project)")
_SM_READ = date(2026, 9, 27)
"""The latest of those reads (a us-east-1 list of every ``ml.*`` type read on this date)."""


def _sm(instance_type: str, usd: float, note: str) -> InstancePrice:
    return InstancePrice(instance_type=instance_type, region="us-east-1", on_demand_usd_per_hour=usd,
                         source=SAGEMAKER_OFFER_FILE, as_of=_SM_READ, basis=f"{_SM_BASIS}; {note}")


_INSTANCE_ROWS: tuple[InstancePrice, ...] = (
    _ec2("g5.xlarge", 1.006, _EC2_BASIS + "; matches an independent June 2026 us-east-1 listing "
         "(https://www.factualminds.com/blog/amazon-ec2-on-demand-pricing-instance-families-2026/)"),
    _ec2("g5.2xlarge", 1.212),
    _ec2("g5.4xlarge", 1.624),
    _ec2("g5.8xlarge", 2.448),
    _ec2("g5.12xlarge", 5.672),
    _ec2("g5.16xlarge", 4.096),
    _ec2("g5.24xlarge", 8.144),
    _ec2("g5.48xlarge", 16.288),
    _ec2("g6.xlarge", 0.8048),
    _ec2("g6.2xlarge", 0.9776),
    _ec2("g6e.xlarge", 1.861, _EC2_BASIS + "; another third-party table says 1.168, contradicted by the vantage data "
         "and by ml.g6e.xlarge (1.4x this figure)"),
    _ec2("g6e.2xlarge", 2.24208),
    _ec2("g6e.4xlarge", 3.00424),
    _ec2("g6e.8xlarge", 4.52856),
    _ec2("g6e.12xlarge", 10.49264, _EC2_BASIS + "; another third-party table says 7.008, contradicted by the vantage "
         "data and by ml.g6e.12xlarge (1.25x this figure)"),
    _ec2("g6e.16xlarge", 7.57719),
    _ec2("g6e.24xlarge", 15.06559),
    _ec2("g6e.48xlarge", 30.13118),
    _ec2("p4d.24xlarge", 21.957642),
    _ec2("p5.48xlarge", 55.04, _EC2_BASIS + "; after the June 2025 P5 price cut (tables before it show 98.32)"),
    _ec2("inf2.xlarge", 0.7582),
    _ec2("inf2.8xlarge", 1.96786),
    _ec2("inf2.24xlarge", 6.49063),
    _ec2("inf2.48xlarge", 12.98127),
    _ec2("m7i.large", 0.1008),
    _ec2("m7i.xlarge", 0.2016),
    _vantage("g6.12xlarge", 4.6016, "us-east-1"),
    # us-west-2: the types the tier presets plan, and their family neighbours
    *(_vantage(t, usd) for t, usd in (
        ("g5.xlarge", 1.006), ("g5.2xlarge", 1.212), ("g5.4xlarge", 1.624), ("g5.8xlarge", 2.448),
        ("g5.12xlarge", 5.672), ("g5.16xlarge", 4.096), ("g5.24xlarge", 8.144), ("g5.48xlarge", 16.288),
        ("g6.xlarge", 0.8048), ("g6.2xlarge", 0.9776), ("g6.12xlarge", 4.6016),
        ("g6e.xlarge", 1.861), ("g6e.2xlarge", 2.24208), ("g6e.4xlarge", 3.00424), ("g6e.8xlarge", 4.52856),
        ("g6e.12xlarge", 10.49264), ("g6e.16xlarge", 7.57719), ("g6e.24xlarge", 15.06559), ("g6e.48xlarge", 30.13118),
        ("p4d.24xlarge", 21.95764), ("p5.48xlarge", 55.04),
        ("inf2.xlarge", 0.7582), ("inf2.8xlarge", 1.96786), ("inf2.24xlarge", 6.49063), ("inf2.48xlarge", 12.98127),
    )),
    # SageMaker hosting, us-east-1 (real-time and asynchronous inference)
    _sm("ml.g5.xlarge", 1.408, "1.4084 in an AWS sample's table, 1.41 rounded, 1.21 in one blog (rejected)"),
    _sm("ml.g5.2xlarge", 1.515, "1.52 rounded on pricing pages"),
    _sm("ml.g5.12xlarge", 7.09, "same in an AWS sample's table (2025-01) and a 2026-08 offer-file read"),
    _sm("ml.g6.xlarge", 1.1267, "USE2-Host:ml.g6.xlarge quoted at the same 1.1267; 1.127 rounded"),
    _sm("ml.g6.2xlarge", 1.222, "same in an AWS sample's table (2025-01) and a 2026-08 offer-file read"),
    _sm("ml.g6.12xlarge", 5.752, "same in an AWS sample's table (2025-01) and a 2026-08 offer-file read"),
    _sm("ml.g6e.xlarge", 2.6054, "2.61 rounded"),
    _sm("ml.g6e.2xlarge", 2.8026, "USE1-Host and USE1-AsyncInf both quoted at 2.8026 (offer published 2026-09-20)"),
    _sm("ml.g6e.12xlarge", 13.1158, "13.12 rounded; one table's 10.49 is the EC2 price"),
    _sm("ml.inf2.xlarge", 0.99, "least certain: two transcriptions (2025-01, 2026-09), no quoted usage type"),
    _sm("ml.inf2.8xlarge", 2.36, "least certain: two transcriptions (2025-01, 2026-09), no quoted usage type; "
        "one table's 1.968 is the EC2 price"),
)

INSTANCE_PRICES: dict[tuple[str, str], InstancePrice] = {(p.instance_type, p.region): p for p in _INSTANCE_ROWS}
"""Keyed by (instance type, Region): EC2 types, and ``ml.*`` types for SageMaker hosting (real-time and async)."""

SPOT = SpotReference(
    kind="typical-discount", discount=0.70, ceiling=0.90, source=SEED_BATCH, as_of=date(2026, 12, 5),
    basis=("the seed's 'spot/preemptible instances (70% cheaper)'; AWS states spot is 'up to 90% off' on-demand "
           f"({SPOT_PRICING_PAGE}). A typical figure, not an observed price for any instance type or Region"))

_NOVA_BASIS = ("aws.amazon.com/bedrock/pricing/ per-1M-token figures as transcribed by a public pricing table; "
               "batch is the page's stated 50% below on-demand")
_NOVA_READ = date(2026, 10, 7)
"""The Bedrock pricing page was captured stating 'batch inference at 50% lower price' on this date."""

TOKEN_PRICES: dict[tuple[str, str], TokenPrice] = {(p.model_id, p.region): p for p in (
    TokenPrice(model_id="amazon.nova-micro-v1:0", region="us-east-1", on_demand_input_per_mtok=0.035,
               on_demand_output_per_mtok=0.14, batch_input_per_mtok=0.0175, batch_output_per_mtok=0.07,
               source=BEDROCK_TRANSCRIPTION, as_of=_NOVA_READ, basis=_NOVA_BASIS),
    TokenPrice(model_id="amazon.nova-lite-v1:0", region="us-east-1", on_demand_input_per_mtok=0.06,
               on_demand_output_per_mtok=0.24, batch_input_per_mtok=0.03, batch_output_per_mtok=0.12,
               source=BEDROCK_TRANSCRIPTION, as_of=_NOVA_READ, basis=_NOVA_BASIS),
    TokenPrice(model_id="amazon.nova-pro-v1:0", region="us-east-1", on_demand_input_per_mtok=0.80,
               on_demand_output_per_mtok=3.20, batch_input_per_mtok=0.40, batch_output_per_mtok=1.60,
               source=BEDROCK_TRANSCRIPTION, as_of=_NOVA_READ, basis=_NOVA_BASIS),
)}

UNPRICED: dict[str, str] = {
    "ml.p4d.24xlarge": ("SageMaker hosting price not found: only its Training price after the 2025 P4 cut ($25.2513, "
                        "2026-09) was quoted, and p4d has no Batch Transform price to compare"),
    "ml.p5.48xlarge": ("SageMaker hosting price not found: only its Training price ($63.296, 2026-09) was quoted"),
}
"""Instance types the stacks plan or the tools ask for that have no price here, with the reason (a test fails on a
planned type that is in neither table, and on an entry here that has a price)."""


class PriceNotFound(LookupError):
    """No catalogue price for the asked instance type, Region or model; the message lists what exists."""


def on_demand(instance_type: str, region: str = "us-east-1") -> InstancePrice:
    """The on-demand price row, or :class:`PriceNotFound` naming the priced types in that Region."""
    row = INSTANCE_PRICES.get((instance_type, region))
    if row is None:
        known = sorted(t for t, r in INSTANCE_PRICES if r == region)
        why = UNPRICED.get(instance_type)
        raise PriceNotFound(
            f"instance_type ({instance_type!r}) has no on-demand price for region {region!r}"
            + (f": {why}" if why else "")
            + (f"; priced there: {', '.join(known)}" if known else "; no prices are catalogued for that region"))
    return row


def spot_usd_per_hour(instance_type: str, region: str = "us-east-1", spot: SpotReference = SPOT) -> float:
    """Estimated spot price: on-demand x (1 - the reference discount). An estimate, never an observed price."""
    return on_demand(instance_type, region).on_demand_usd_per_hour * (1 - spot.discount)


def tokens(model_id: str, region: str = "us-east-1") -> TokenPrice:
    """The Bedrock token price row, or :class:`PriceNotFound` naming the priced models."""
    row = TOKEN_PRICES.get((model_id, region))
    if row is None:
        known = sorted(m for m, r in TOKEN_PRICES if r == region)
        raise PriceNotFound(f"model ({model_id!r}) has no Bedrock token price for region {region!r}; "
                            f"priced there: {', '.join(known) or 'none'}")
    return row


def bedrock_base_ids() -> set[str]:
    """On-demand model ids of the Bedrock catalogue (what :data:`TOKEN_PRICES` keys must come from)."""
    return {m.base_id for m in bedrock_models.MODELS.values()}


__all__ = [
    "CHECKED",
    "INSTANCE_PRICES",
    "SPOT",
    "TOKEN_PRICES",
    "UNPRICED",
    "InstancePrice",
    "PriceNotFound",
    "SpotReference",
    "TokenPrice",
    "bedrock_base_ids",
    "on_demand",
    "spot_usd_per_hour",
    "tokens",
]
