"""Price catalogue: EC2 on-demand, spot ranges, Capacity Blocks and SageMaker hosting hourly prices, and Bedrock token
and Provisioned Throughput prices.

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
- **Spot** (:func:`spot_range`: low / typical / high per instance type and Region). When a refresh stored a spot
  price history summary (:data:`SPOT_OBSERVED`) the range is its min, time-weighted average and max. Otherwise it is
  the documented discount range applied to on-demand: the seed's typical "about 70% cheaper" (typical), AWS's "up to
  90%" ceiling (low), and the on-demand price itself (high: the default maximum spot price). The ``basis`` says which.
  :func:`spot_usd_per_hour` keeps applying the typical discount only. SageMaker inference has no spot price.
- **EC2 Capacity Blocks for ML** (:data:`CAPACITY_BLOCKS`, USD per instance-hour): p5.48xlarge (us-east-1, us-east-2)
  $39.33 ($4.916 per GPU-hour), p5e.48xlarge (us-east-2) $43.26, p4d.24xlarge (us-east-2, us-west-2) $14.75, from
  the Capacity Blocks pricing page as captured before its 2025-01-01 update (AWS revises these rates with supply and
  demand). No later figure was found, nor whether AWS's June 2025 P5/P4 price cut (stated for on-demand and Savings
  Plans) reached them, so they may be high. p5en.48xlarge had no figure. Capacity Blocks exist in the listed Regions
  only; the refresh does not fetch them.
- **Bedrock tokens, us-east-1:** the Amazon Nova (v1) text models, on-demand and batch. AWS's Bedrock pricing page
  states that batch inference is priced 50% below on-demand; the per-model figures are as transcribed from that
  page by a public pricing table (the same figures appear in a dated 2025-07-20 transcription,
  github.com/convo-lang/convo-lang packages/convo-lang-bedrock/bedrock-pricing.md). Nova 2 Lite, Titan and Claude v2
  prices were not sourced and are absent. :func:`bedrock_tokens` prices a contextual variant as its base model.
- **Bedrock tokens, Meta Llama 3.1 Instruct** (the on-demand models of
  :data:`components.catalog.bedrock_models.ON_DEMAND`): 8B $0.22 / $0.22 and 70B $0.72 / $0.72 per 1M input / output
  tokens in **us-east-1**, 405B $2.40 / $2.40 in **us-west-2**, from the AWS Price List offer files for AmazonBedrock
  (usage types ``USE1-Llama3-1-8B-*``, ``USE1-Llama3-1-70B-*``, ``USW2-Llama3-1-405B-*``) as quoted by a public
  project's provider-validation record that fetched them on 2026-06-11 (not fetched by this project). The same
  on-demand figures, and batch at half of them, are in the 2025-07-20 transcription above; the batch figures come from
  that transcription (it states no Region; the record saw us-east-1 batch SKUs for 405B at $1.20, the same half).
  us-east-1 has no 405B on-demand SKU (batch only) and in-Region 8B/70B calls are us-west-2 only: us-east-1 calls them
  through the ``us.`` cross-Region profile at the source Region's price. Older tables show the launch prices (70B
  $0.99, 405B $5.32 / $16.00, us-west-2, July 2024); a 2026 blog's 8B $0.08 / $0.32 and 70B $0.55 / $2.20 match no AWS
  figure and are not used. The 405B model reached its end of life on 2026-07-07 (model card), so no Hugging Face model
  maps to it. **Not priced:** Mistral 7B Instruct (``mistral.mistral-7b-instruct-v0:2``): only undated third-party
  copies ($0.15 / $0.20, no batch figure) were found, and it serves the v0.2 weights, not the v0.3 the stacks serve.
- **Bedrock Provisioned Throughput** (:func:`bedrock_provisioned`, USD per model unit per hour, no commitment / 1
  month / 6 months): no price was found for any catalogued model (read 2026-12). :data:`PROVISIONED_UNPRICED` holds
  the reason per model, and :func:`provisioned_unpriced_reason` adds the Region and no-commitment restrictions of
  :mod:`components.catalog.bedrock_models`; the capacity report says "no price" with that reason.

Refresh: ``genai-scale prices refresh`` (:mod:`components.catalog.price_refresh`) reads the AWS Price List API
(``pricing:GetProducts``: AmazonEC2 with ``TERM_MATCH`` filters ``instanceType``, ``regionCode``,
``operatingSystem=Linux``, ``tenancy=Shared``, ``preInstalledSw=NA``, ``capacitystatus=Used``,
``marketoption=OnDemand``; AmazonSageMaker with ``instanceName`` and ``regionCode``, the ``Host`` and ``AsyncInf``
components) and ``ec2:DescribeSpotPriceHistory`` (``Linux/UNIX``, the last 30 days), and writes the rows to
:data:`DATA_FILE` (``components/catalog/data/prices.json``) with the API endpoint as source, the fetch date as
``as_of`` and the offer version or averaging window in ``basis``. This module loads that file at import: a refreshed
row replaces the hand-kept row with the same (instance type, Region) in :data:`INSTANCE_PRICES`, and a stored spot
summary makes :func:`spot_range` observed. The hand-kept rows stay in :data:`HAND_KEPT_PRICES`.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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
BEDROCK_OFFER_FILE = "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonBedrock/current/{region}/index.json"
"""The AWS Price List offer file for Amazon Bedrock in one Region (``.format(region=...)``)."""
SPOT_PRICING_PAGE = "https://aws.amazon.com/ec2/spot/pricing/"
SEED_BATCH = "seed 003 §4.5 (BATCH INFERENCE VS REAL-TIME INFERENCE)"

Region = Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]+$")]
"""An AWS Region code (``us-east-1``); the hand-kept rows cover us-east-1 and us-west-2, a refresh may add others."""


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


class SpotObservation(_Sourced):
    """Spot price history of one instance type in one Region over a window (Linux/UNIX), as stored by a refresh
    (:mod:`components.catalog.price_refresh`): the time-weighted average per Availability Zone, averaged over the
    zones, and the lowest and highest price any zone had in the window."""

    instance_type: str = Field(pattern=r"^[a-z][a-z0-9-]*\.[0-9a-z]+$")
    region: Region
    availability_zones: tuple[str, ...] = Field(min_length=1)
    """The zones that had a spot price in the window."""
    window_start: date
    window_end: date
    samples: int = Field(ge=1)
    """Price records read (each one a price change in one zone, plus the price in effect at the window start)."""
    min_usd_per_hour: float = Field(gt=0, le=1000)
    average_usd_per_hour: float = Field(gt=0, le=1000)
    max_usd_per_hour: float = Field(gt=0, le=1000)

    @model_validator(mode="after")
    def _ordered(self) -> SpotObservation:
        if not self.min_usd_per_hour <= self.average_usd_per_hour <= self.max_usd_per_hour:
            raise ValueError(f"min_usd_per_hour ({self.min_usd_per_hour}) <= average_usd_per_hour "
                             f"({self.average_usd_per_hour}) <= max_usd_per_hour ({self.max_usd_per_hour}) must hold")
        if self.window_start > self.window_end:
            raise ValueError(f"window_start ({self.window_start}) must be <= window_end ({self.window_end})")
        return self


class SpotRange(_Sourced):
    """What one instance type costs on spot in one Region, USD per instance-hour: a low, a typical and a high figure.

    ``kind="observed"``: min, time-weighted average and max of a stored spot price history (``basis`` names the
    window). ``kind="typical-discount"``: no history is stored; the figures are on-demand x (1 - 0.90) (AWS's "up to
    90%" ceiling), x (1 - 0.70) (the seed's typical saving) and the on-demand price itself (the default maximum spot
    price; spot never bills above it unless a higher maximum is set)."""

    instance_type: str
    region: Region
    kind: Literal["observed", "typical-discount"]
    low_usd_per_hour: float = Field(gt=0)
    typical_usd_per_hour: float = Field(gt=0)
    high_usd_per_hour: float = Field(gt=0)
    on_demand_usd_per_hour: float = Field(gt=0)
    """The on-demand price the range is compared with (and, for ``typical-discount``, derived from)."""

    @model_validator(mode="after")
    def _ordered(self) -> SpotRange:
        if not self.low_usd_per_hour <= self.typical_usd_per_hour <= self.high_usd_per_hour:
            raise ValueError(f"low_usd_per_hour ({self.low_usd_per_hour}) <= typical_usd_per_hour "
                             f"({self.typical_usd_per_hour}) <= high_usd_per_hour ({self.high_usd_per_hour}) must hold")
        return self


class CapacityBlockPrice(_Sourced):
    """EC2 Capacity Blocks for ML: the reservation fee of one instance of a block, USD per instance-hour (paid up
    front for the whole block when it is bought; the operating-system fee while instances run is not included)."""

    instance_type: str = Field(pattern=r"^[a-z][a-z0-9-]*\.[0-9a-z]+$")
    region: Region
    usd_per_instance_hour: float = Field(gt=0, le=1000)
    accelerators: int = Field(ge=1)
    """Accelerators (GPUs or Trainium chips) per instance: the per-accelerator rate is the instance rate / this."""

    @property
    def usd_per_accelerator_hour(self) -> float:
        return self.usd_per_instance_hour / self.accelerators


Commitment = Literal["none", "1month", "6month"]
"""Bedrock Provisioned Throughput terms: no commitment (delete any time), one month, six months."""

COMMITMENT_FROM_API: dict[str | None, Commitment] = {None: "none", "OneMonth": "1month", "SixMonths": "6month"}
"""CreateProvisionedModelThroughput's ``commitmentDuration`` (omitted for no commitment) -> :data:`Commitment`."""


class ProvisionedPrice(_Sourced):
    """Bedrock Provisioned Throughput: USD per model unit per hour for one model variant, Region and term."""

    model_id: str = Field(min_length=3)
    """Contextual-variant id, as in :mod:`components.catalog.bedrock_models` (``amazon.nova-lite-v1:0:24k``)."""
    region: Region
    commitment: Commitment
    usd_per_model_unit_per_hour: float = Field(gt=0)


DATA_FILE = Path(__file__).parent / "data" / "prices.json"
"""Rows stored by a refresh (``genai-scale prices refresh``); they win over the hand-kept rows with the same key."""


class RefreshedPrices(BaseModel):
    """The content of :data:`DATA_FILE`: rows read from the AWS APIs, each with its source, date and basis."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    on_demand: tuple[InstancePrice, ...] = ()
    """EC2 and SageMaker (``ml.*``) on-demand rows from the Price List API."""
    spot: tuple[SpotObservation, ...] = ()
    """Spot price history summaries from DescribeSpotPriceHistory."""


class PriceDataError(ValueError):
    """The stored price data is malformed; the message lists every problem with its key path."""


def parse_refreshed(data: object, where: str = "prices.json") -> RefreshedPrices:
    """Validate the JSON content of a refreshed price file; :class:`PriceDataError` lists every problem."""
    try:
        return RefreshedPrices.model_validate(data)
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"]).lstrip(".")
            got = "" if e["type"] == "missing" else f" (got {e['input']!r})"
            lines.append(f"  - {where}: {path or '(top level)'}: {e['msg']}{got}")
        raise PriceDataError(f"{where} has {len(lines)} problem(s):\n" + "\n".join(lines)) from None


def load_refreshed(path: Path = DATA_FILE) -> RefreshedPrices:
    """Read a refreshed price file (an absent file is an empty one)."""
    if not path.exists():
        return RefreshedPrices()
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise PriceDataError(f"{path.name}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise PriceDataError(f"{path.name}: cannot be read ({exc.strerror or exc})") from None
    return parse_refreshed(data, path.name)


REFRESHED = load_refreshed()
"""What the last refresh stored (empty until one runs)."""


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

HAND_KEPT_PRICES: dict[tuple[str, str], InstancePrice] = {(p.instance_type, p.region): p for p in _INSTANCE_ROWS}
"""The rows above, keyed by (instance type, Region)."""



def with_refreshed(refreshed: RefreshedPrices) -> dict[tuple[str, str], InstancePrice]:
    """The hand-kept rows, with each refreshed row replacing the one of the same (instance type, Region)."""
    return {**HAND_KEPT_PRICES, **{(p.instance_type, p.region): p for p in refreshed.on_demand}}


INSTANCE_PRICES: dict[tuple[str, str], InstancePrice] = with_refreshed(REFRESHED)
"""Keyed by (instance type, Region): EC2 types, and ``ml.*`` types for SageMaker hosting (real-time and async).
Refreshed rows (:data:`REFRESHED`) replace the hand-kept row with the same key."""

SPOT_OBSERVED: dict[tuple[str, str], SpotObservation] = {(o.instance_type, o.region): o for o in REFRESHED.spot}
"""Stored spot price history summaries, keyed by (instance type, Region)."""

SPOT = SpotReference(
    kind="typical-discount", discount=0.70, ceiling=0.90, source=SEED_BATCH, as_of=date(2026, 12, 5),
    basis=("the seed's 'spot/preemptible instances (70% cheaper)'; AWS states spot is 'up to 90% off' on-demand "
           f"({SPOT_PRICING_PAGE}). A typical figure, not an observed price for any instance type or Region"))

_NOVA_BASIS = ("aws.amazon.com/bedrock/pricing/ per-1M-token figures as transcribed by a public pricing table; "
               "batch is the page's stated 50% below on-demand")
_NOVA_READ = date(2026, 10, 7)
"""The Bedrock pricing page was captured stating 'batch inference at 50% lower price' on this date."""

_LLAMA_READ = date(2026, 6, 11)
"""The offer files were fetched (and last modified) on this date by the record that quotes them."""


def _llama(model_id: str, region: str, usd: float, usage: str, note: str) -> TokenPrice:
    """A Llama 3.1 Instruct row: the same price for input and output tokens, batch at half."""
    return TokenPrice(
        model_id=model_id, region=region, on_demand_input_per_mtok=usd, on_demand_output_per_mtok=usd,
        batch_input_per_mtok=usd / 2, batch_output_per_mtok=usd / 2,
        source=BEDROCK_OFFER_FILE.format(region=region), as_of=_LLAMA_READ,
        basis=(f"AWS Price List offer file for AmazonBedrock {region}, usage types {usage} input/output tokens at "
               f"${usd / 1000:g} per 1K, as quoted by a public project's provider-validation record that fetched it "
               "on 2026-06-11 (not fetched by this project); the same figures and batch at half in the 2025-07-20 "
               "transcription of aws.amazon.com/bedrock/pricing/ (github.com/convo-lang/convo-lang "
               "packages/convo-lang-bedrock/bedrock-pricing.md, which states no Region)"
               + (f"; {note}" if note else "")))


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
    *(_llama(*row) for row in (
        ("meta.llama3-1-8b-instruct-v1:0", "us-east-1", 0.22, "USE1-Llama3-1-8B", ""),
        ("meta.llama3-1-70b-instruct-v1:0", "us-east-1", 0.72, "USE1-Llama3-1-70B", ""),
        ("meta.llama3-1-405b-instruct-v1:0", "us-west-2", 2.40, "USW2-Llama3-1-405B",
         "us-east-1 has its batch SKUs only; the model's end of life was 2026-07-07 (model card)"),
    )),
)}

UNPRICED: dict[str, str] = {
    "ml.p4d.24xlarge": ("SageMaker hosting price not found: only its Training price after the 2025 P4 cut ($25.2513, "
                        "2026-09) was quoted, and p4d has no Batch Transform price to compare"),
    "ml.p5.48xlarge": ("SageMaker hosting price not found: only its Training price ($63.296, 2026-09) was quoted"),
}
"""Instance types the stacks plan or the tools ask for that have no price here, with the reason (a test fails on a
planned type that is in neither table, and on an entry here that has a price)."""


CAPACITY_BLOCKS_PRICING_PAGE = "https://aws.amazon.com/ec2/capacityblocks/pricing/"

_CB_DATE = date(2024, 12, 31)
"""The snapshot says its rates hold until a price update "scheduled ... on January 1, 2025": their last day."""
_CB_BASIS = ("EC2 Capacity Blocks for ML pricing page: the reservation fee per instance-hour, paid up front (the "
             "operating-system fee while instances run is extra and not included), as captured in a public copy of "
             "the page taken before its 2025-01-01 price update (AWS revises these rates with supply and demand; no "
             "later figure was found)")


def _cb(instance_type: str, region: str, usd: float, per_accelerator: float, accelerators: int) -> CapacityBlockPrice:
    return CapacityBlockPrice(
        instance_type=instance_type, region=region, usd_per_instance_hour=usd, accelerators=accelerators,
        source=CAPACITY_BLOCKS_PRICING_PAGE, as_of=_CB_DATE,
        basis=f"{_CB_BASIS}; the page states ${per_accelerator:g} per accelerator-hour")


CAPACITY_BLOCKS: dict[tuple[str, str], CapacityBlockPrice] = {(p.instance_type, p.region): p for p in (
    _cb("p5.48xlarge", "us-east-1", 39.33, 4.916, 8),
    _cb("p5.48xlarge", "us-east-2", 39.33, 4.916, 8),
    _cb("p5e.48xlarge", "us-east-2", 43.26, 5.408, 8),
    _cb("p4d.24xlarge", "us-east-2", 14.75, 1.844, 8),
    _cb("p4d.24xlarge", "us-west-2", 14.75, 1.844, 8),
)}
"""EC2 Capacity Blocks for ML, keyed by (instance type, Region)."""

PROVISIONED_PRICES: dict[tuple[str, str, str], ProvisionedPrice] = {}
"""Bedrock Provisioned Throughput, keyed by (contextual-variant model id, Region, commitment)."""

_PT_NOVA = ("no primary or clearly quoted per-model-unit hourly price found (read 2026-12): the Bedrock pricing page "
            "renders its Provisioned Throughput table client-side, no transcription of its Nova rows was found, and "
            "third-party pages give only guesses (one says to 'expect ~$22-28/hour' for Nova Pro), not prices")
_PT_OLDER = ("no current price found (read 2026-12): the only per-model-unit figures seen are an undated third-party "
             "copy of an older (Claude Instant and Llama 2 era) Bedrock pricing page whose origin could not be "
             "traced, so they are not used")

PROVISIONED_UNPRICED: dict[str, str] = {
    m.model_id: (_PT_NOVA if m.name.startswith("Nova") else _PT_OLDER) for m in bedrock_models.MODELS.values()
}
"""Bedrock models (contextual-variant ids) without a Provisioned Throughput price, with the reason."""


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


def spot_range(instance_type: str, region: str = "us-east-1") -> SpotRange:
    """Spot price range for an EC2 type: from the stored spot history when a refresh stored one (``observed``), else
    the documented discount range applied to on-demand (``typical-discount``); see :class:`SpotRange`.

    :class:`PriceNotFound` for an ``ml.*`` type (SageMaker inference has no spot price) and for a type without an
    on-demand price."""
    if instance_type.startswith("ml."):
        raise PriceNotFound(f"instance_type ({instance_type!r}) is a SageMaker type: SageMaker inference has no spot "
                            "price")
    od = on_demand(instance_type, region).on_demand_usd_per_hour
    seen = SPOT_OBSERVED.get((instance_type, region))
    if seen is not None:
        return SpotRange(
            instance_type=instance_type, region=region, kind="observed", low_usd_per_hour=seen.min_usd_per_hour,
            typical_usd_per_hour=seen.average_usd_per_hour, high_usd_per_hour=seen.max_usd_per_hour,
            on_demand_usd_per_hour=od, source=seen.source, as_of=seen.as_of,
            basis=(f"observed spot price history {seen.window_start}..{seen.window_end} in "
                   f"{', '.join(seen.availability_zones)}: min, time-weighted average, max ({seen.basis})"))
    return SpotRange(
        instance_type=instance_type, region=region, kind="typical-discount",
        low_usd_per_hour=od * (1 - SPOT.ceiling), typical_usd_per_hour=od * (1 - SPOT.discount),
        high_usd_per_hour=od, on_demand_usd_per_hour=od, source=SPOT.source, as_of=SPOT.as_of,
        basis=(f"no spot history stored: on-demand ${od:g}/h x (1 - {SPOT.ceiling:g}) (AWS's 'up to 90% off' "
               f"ceiling), x (1 - {SPOT.discount:g}) (the seed's typical saving), and the on-demand price (the "
               "default maximum spot price). An estimate, not an observed price"))


def capacity_block(instance_type: str, region: str = "us-east-1") -> CapacityBlockPrice | None:
    """The Capacity Blocks for ML price of an instance type in a Region, or None when none is catalogued."""
    return CAPACITY_BLOCKS.get((instance_type, region))


def sagemaker(instance_type_ml: str, region: str = "us-east-1") -> InstancePrice:
    """SageMaker real-time / asynchronous inference instance price (an ``ml.*`` type); :class:`PriceNotFound` for a
    type without one (the message carries the :data:`UNPRICED` reason) or a name without the ``ml.`` prefix."""
    if not instance_type_ml.startswith("ml."):
        raise PriceNotFound(f"instance_type ({instance_type_ml!r}) is not a SageMaker instance type (they start with "
                            "'ml.')")
    return on_demand(instance_type_ml, region)


def _bedrock_variant(model_id: str) -> bedrock_models.BedrockModel:
    row = bedrock_models.lookup(model_id)
    if row is None:
        raise PriceNotFound(f"model ({model_id!r}) is not in the Bedrock Provisioned Throughput catalogue; known: "
                            f"{', '.join(sorted(bedrock_models.MODELS))}")
    return row


def bedrock_tokens(model_id: str, region: str = "us-east-1") -> TokenPrice:
    """Bedrock on-demand/batch token price for an on-demand id (``amazon.nova-lite-v1:0``) or a contextual variant
    (``amazon.nova-lite-v1:0:24k``, priced as its base model); :class:`PriceNotFound` when not catalogued."""
    row = bedrock_models.lookup(model_id)
    return tokens(row.base_id if row is not None else model_id, region)


def bedrock_provisioned(model_id: str, region: str = "us-east-1",
                        commitment: Commitment = "none") -> ProvisionedPrice | None:
    """Provisioned Throughput price per model unit per hour, or None when no source was found (the reason is
    :func:`provisioned_unpriced_reason`). :class:`PriceNotFound` for a model id that is not a catalogued contextual
    variant."""
    _bedrock_variant(model_id)
    return PROVISIONED_PRICES.get((model_id, region, commitment))


def provisioned_unpriced_reason(model_id: str, region: str = "us-east-1", commitment: Commitment = "none") -> str:
    """Why :func:`bedrock_provisioned` has no price for this model, Region and term ("" when it has one)."""
    row = _bedrock_variant(model_id)
    if (model_id, region, commitment) in PROVISIONED_PRICES:
        return ""
    if region not in row.pt_regions:
        return f"{model_id} cannot be bought as Provisioned Throughput in {region} (only {', '.join(row.pt_regions)})"
    if commitment == "none" and row.no_commit is False:
        return f"{model_id} is not offered without a commitment"
    return PROVISIONED_UNPRICED.get(model_id, f"no {commitment} price for {model_id} in {region} is catalogued")


def tokens(model_id: str, region: str = "us-east-1") -> TokenPrice:
    """The Bedrock token price row, or :class:`PriceNotFound` naming the priced models."""
    row = TOKEN_PRICES.get((model_id, region))
    if row is None:
        known = sorted(m for m, r in TOKEN_PRICES if r == region)
        raise PriceNotFound(f"model ({model_id!r}) has no Bedrock token price for region {region!r}; "
                            f"priced there: {', '.join(known) or 'none'}")
    return row


def bedrock_base_ids() -> set[str]:
    """On-demand model ids of the Bedrock catalogue (what :data:`TOKEN_PRICES` keys must come from): the base models
    of the Provisioned Throughput variants and the on-demand models of open weights
    (:data:`components.catalog.bedrock_models.ON_DEMAND`)."""
    return {m.base_id for m in bedrock_models.MODELS.values()} | set(bedrock_models.ON_DEMAND)


__all__ = [
    "CAPACITY_BLOCKS",
    "CHECKED",
    "COMMITMENT_FROM_API",
    "DATA_FILE",
    "HAND_KEPT_PRICES",
    "INSTANCE_PRICES",
    "PROVISIONED_PRICES",
    "PROVISIONED_UNPRICED",
    "REFRESHED",
    "SPOT",
    "SPOT_OBSERVED",
    "TOKEN_PRICES",
    "UNPRICED",
    "CapacityBlockPrice",
    "Commitment",
    "InstancePrice",
    "PriceDataError",
    "PriceNotFound",
    "ProvisionedPrice",
    "RefreshedPrices",
    "SpotObservation",
    "SpotRange",
    "SpotReference",
    "TokenPrice",
    "bedrock_base_ids",
    "bedrock_provisioned",
    "bedrock_tokens",
    "capacity_block",
    "load_refreshed",
    "on_demand",
    "parse_refreshed",
    "provisioned_unpriced_reason",
    "sagemaker",
    "spot_range",
    "spot_usd_per_hour",
    "tokens",
    "with_refreshed",
]
