"""Hand-built throughput profiles and fixed prices, so every expected number in these tests is computed by hand and
does not move when the catalogues are refreshed."""

from __future__ import annotations

from datetime import date

import pytest

from components.catalog import prices
from components.catalog.throughput import ProfilePoint, ThroughputProfile

MODEL_8B = "meta-llama/Llama-3.1-8B-Instruct"
"""Catalogued (the fit check has its facts); its profiles here are built by hand."""


def point(concurrency: int, tokens: float, ttft: float, itl: float) -> ProfilePoint:
    return ProfilePoint(concurrency=concurrency, output_tokens_per_second=tokens, ttft_ms=ttft, itl_ms=itl)


def profile(accelerator: str, *points: ProfilePoint, model: str = MODEL_8B, params: float = 8.03, tp: int = 1,
            pp: int = 1, latency_stat: str = "p95") -> ThroughputProfile:
    return ThroughputProfile(model=model, params_billion=params, accelerator=accelerator, precision="bf16",
                             tensor_parallel=tp, pipeline_parallel=pp, input_tokens=1000, output_tokens=200,
                             latency_stat=latency_stat, points=points, basis="measured",
                             source="hand-built test profile", as_of=date(2026, 12, 6))


A10G = profile("A10G", point(1, 100, 100, 20), point(8, 500, 400, 40), point(16, 800, 1600, 80))
"""At TTFT <= 500 ms the best is concurrency 8 (c=9 interpolates to TTFT 550): 500 tok/s; the plateau (no SLO) is
800 tok/s at 16."""

L40S = profile("L40S", point(1, 150, 80, 15), point(8, 1000, 300, 30), point(16, 1600, 500, 50))
"""At TTFT <= 500 ms the best is concurrency 16: 1600 tok/s (also the plateau)."""

H100 = profile("H100", point(1, 200, 2000, 10), point(32, 10000, 5000, 30))
"""TTFT 2000 ms at concurrency 1: misses a 500 ms SLO at any concurrency; plateau 10,000 tok/s."""

ON_DEMAND = {"g5.xlarge": 1.0, "g6e.xlarge": 2.5, "p5.48xlarge": 15.0, "g5.12xlarge": 4.0}
SAGEMAKER = {"ml.g5.xlarge": 1.4}


def _row(instance_type: str, usd: float, region: str) -> prices.InstancePrice:
    return prices.InstancePrice(instance_type=instance_type, region=region, on_demand_usd_per_hour=usd,
                                source="https://example.com/test-prices", as_of=date(2026, 12, 6),
                                basis="fixed test price, not a real one")


@pytest.fixture
def fixed_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    """On-demand and SageMaker from the tables above (else PriceNotFound); spot low/typical/high = 0.1/0.3/1.0 x
    on-demand; no Capacity Block prices."""

    def on_demand(instance_type: str, region: str = "us-east-1") -> prices.InstancePrice:
        if region != "us-east-1" or instance_type not in ON_DEMAND:
            raise prices.PriceNotFound(f"instance_type ({instance_type!r}) has no on-demand price for region "
                                       f"{region!r}")
        return _row(instance_type, ON_DEMAND[instance_type], region)

    def sagemaker(instance_type: str, region: str = "us-east-1") -> prices.InstancePrice:
        if instance_type not in SAGEMAKER:
            raise prices.PriceNotFound(f"instance_type ({instance_type!r}) has no SageMaker price")
        return _row(instance_type, SAGEMAKER[instance_type], region)

    def spot_range(instance_type: str, region: str = "us-east-1") -> prices.SpotRange:
        od = on_demand(instance_type, region).on_demand_usd_per_hour
        return prices.SpotRange(instance_type=instance_type, region=region, kind="typical-discount",
                                low_usd_per_hour=0.1 * od, typical_usd_per_hour=0.3 * od, high_usd_per_hour=od,
                                on_demand_usd_per_hour=od, source="https://example.com/test-prices",
                                as_of=date(2026, 12, 6), basis="fixed test range, not a real one")

    monkeypatch.setattr(prices, "on_demand", on_demand)
    monkeypatch.setattr(prices, "sagemaker", sagemaker)
    monkeypatch.setattr(prices, "spot_range", spot_range)
    monkeypatch.setattr(prices, "capacity_block", lambda instance_type, region="us-east-1": None)
