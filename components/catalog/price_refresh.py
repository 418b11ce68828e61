"""Refresh the price catalogue from the AWS APIs: on-demand prices from the Price List API, spot averages from the
spot price history, written to :data:`components.catalog.prices.DATA_FILE` (``genai-scale prices refresh``).

What it calls (read-only; no resource is created and nothing is billed; the Price List API and
DescribeSpotPriceHistory are free):
- **On-demand, EC2.** ``pricing:GetProducts`` (the Price List Query API, always through its us-east-1 endpoint) with
  ServiceCode ``AmazonEC2`` and ``TERM_MATCH`` filters ``instanceType``, ``regionCode``, ``operatingSystem=Linux``,
  ``tenancy=Shared``, ``preInstalledSw=NA``, ``capacitystatus=Used`` and ``marketoption=OnDemand`` (the offer also
  holds Capacity Block products for the same instance type; this filter leaves them out). Paginated. Each
  ``PriceList`` entry is a JSON string; the price is ``terms.OnDemand.*.priceDimensions.*.pricePerUnit.USD`` of the
  dimension whose unit is ``Hrs``. The offer ``version`` and ``publicationDate`` of the entry go into the row's basis.
- **On-demand, SageMaker** (``ml.*`` types). ServiceCode ``AmazonSageMaker``, filters ``instanceName`` and
  ``regionCode``; the products come per component, told apart by the usage type (``USE1-Host:ml.g5.xlarge``): the
  ``Host`` component (real-time inference) is the price; the ``AsyncInf`` component is compared with it and a
  difference is stated in the basis (the catalogue serves both modes from one row).
- **Spot.** ``ec2:DescribeSpotPriceHistory`` in each Region for ``Linux/UNIX`` over the last ``days`` days
  (paginated). The answer holds every price change per Availability Zone plus the price in effect at the window
  start; each zone's price is averaged over time (a price holds until the next change), the zone averages are
  averaged, and the lowest and highest price any zone had are kept (:class:`components.catalog.prices.SpotObservation`).

Every row written carries ``source`` (the API endpoint called), ``as_of`` (the date of the fetch) and ``basis`` (the
service, filters, offer version or averaging window). :mod:`components.catalog.prices` loads the file at import and
its rows replace the hand-kept rows with the same (instance type, Region). A refresh merges into the file: rows it
did not fetch are kept.

Permissions: ``pricing:GetProducts`` and ``ec2:DescribeSpotPriceHistory`` (both without resource scoping). Errors
(no credentials, throttling, access denied, a type without a product or spot history) are reported as one line each;
:func:`main` exits 2 for bad arguments and 1 for AWS errors, never with a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from components.catalog import prices
from components.catalog.prices import InstancePrice, RefreshedPrices, SpotObservation

PRICING_REGION = "us-east-1"
"""The Price List Query API endpoint used (it also answers in eu-central-1 and ap-south-1; prices are the same)."""
DEFAULT_DAYS = 30
"""Spot averaging window, in days."""
MAX_DAYS = 90
"""DescribeSpotPriceHistory returns at most the last 90 days."""
SPOT_PRODUCT = "Linux/UNIX"
PRICING_PAGE_SIZE = 100
"""GetProducts MaxResults (the API's largest page)."""
SPOT_PAGE_SIZE = 1000
"""DescribeSpotPriceHistory MaxResults (the API's largest page): fewer calls, less throttling."""

_TYPE = re.compile(r"^(ml\.)?[a-z][a-z0-9-]*\.[0-9a-z]+$")
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]+$")


class RefreshError(Exception):
    """A refresh problem with one clear message (no traceback is shown for it)."""


class MissingPrices(RefreshError):
    """Some instance types had no product (or no spot history); the rows that were found are in :attr:`rows`."""

    def __init__(self, problems: list[str], rows: list[Any]):
        super().__init__("; ".join(problems))
        self.problems = problems
        self.rows = rows


def _term(field_name: str, value: str) -> dict[str, str]:
    return {"Type": "TERM_MATCH", "Field": field_name, "Value": value}


def ec2_filters(instance_type: str, region: str) -> list[dict[str, str]]:
    """GetProducts filters for the Linux, shared-tenancy on-demand price of an EC2 type in a Region."""
    return [_term("instanceType", instance_type), _term("regionCode", region), _term("operatingSystem", "Linux"),
            _term("tenancy", "Shared"), _term("preInstalledSw", "NA"), _term("capacitystatus", "Used"),
            _term("marketoption", "OnDemand")]


def sagemaker_filters(instance_type: str, region: str) -> list[dict[str, str]]:
    """GetProducts filters for every SageMaker component of an ``ml.*`` type in a Region."""
    return [_term("instanceName", instance_type), _term("regionCode", region)]


@dataclass(frozen=True)
class Product:
    """One parsed PriceList entry: its attributes, hourly on-demand USD prices and offer version."""

    attributes: dict[str, str]
    usd_per_hour: tuple[float, ...]
    version: str
    publication_date: str

    @property
    def usage_component(self) -> str:
        """The usage type's component without its Region prefix: ``USE1-Host:ml.g5.xlarge`` -> ``Host``."""
        head = self.attributes.get("usagetype", "").split(":", 1)[0]
        return re.sub(r"^[A-Z]{2,4}[0-9]?-", "", head)


def parse_price_list_item(item: str) -> Product:
    """Parse one ``PriceList`` JSON string; :class:`RefreshError` when it is not the documented shape."""
    try:
        doc = json.loads(item)
        attributes = dict(doc["product"]["attributes"])
        usd = []
        for term in doc.get("terms", {}).get("OnDemand", {}).values():
            for dim in term["priceDimensions"].values():
                value = float(dim["pricePerUnit"]["USD"])
                if dim.get("unit") == "Hrs" and value > 0:
                    usd.append(value)
        return Product(attributes, tuple(usd), str(doc.get("version", "")), str(doc.get("publicationDate", "")))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RefreshError(f"unexpected PriceList entry from the Price List API ({type(exc).__name__}: {exc}): "
                           f"{item[:120]}") from None


def _products(pricing_client: Any, service_code: str, filters: list[dict[str, str]]) -> list[Product]:
    pages = pricing_client.get_paginator("get_products").paginate(
        ServiceCode=service_code, Filters=filters, FormatVersion="aws_v1",
        PaginationConfig={"PageSize": PRICING_PAGE_SIZE})
    return [parse_price_list_item(item) for page in pages for item in page.get("PriceList", [])]


def _offer(product: Product) -> str:
    return f"offer version {product.version or '?'} published {product.publication_date or '?'}"


def _ec2_row(pricing_client: Any, instance_type: str, region: str, today: date) -> InstancePrice | str:
    found = [p for p in _products(pricing_client, "AmazonEC2", ec2_filters(instance_type, region)) if p.usd_per_hour]
    prices_found = sorted({usd for p in found for usd in p.usd_per_hour})
    if not prices_found:
        return f"{instance_type}: no AmazonEC2 on-demand Linux product in {region}"
    if len(prices_found) > 1:
        return (f"{instance_type}: {len(found)} AmazonEC2 products in {region} with different prices "
                f"({', '.join(f'{v:g}' for v in prices_found)}); not stored")
    basis = (f"AWS Price List API GetProducts AmazonEC2 regionCode={region}, Linux, shared tenancy, no pre-installed "
             f"software, capacitystatus Used, marketoption OnDemand; {_offer(found[0])}; fetched {today}")
    return InstancePrice(instance_type=instance_type, region=region, on_demand_usd_per_hour=prices_found[0],
                         source=pricing_client.meta.endpoint_url, as_of=today, basis=basis)


def _sagemaker_row(pricing_client: Any, instance_type: str, region: str, today: date) -> InstancePrice | str:
    found = _products(pricing_client, "AmazonSageMaker", sagemaker_filters(instance_type, region))
    by_component: dict[str, set[float]] = {}
    for p in found:
        by_component.setdefault(p.usage_component, set()).update(p.usd_per_hour)
    host = sorted(by_component.get("Host", ()))
    if not host:
        return f"{instance_type}: no AmazonSageMaker hosting (Host) product in {region}"
    if len(host) > 1:
        return (f"{instance_type}: SageMaker hosting products in {region} with different prices "
                f"({', '.join(f'{v:g}' for v in host)}); not stored")
    asyn = sorted(by_component.get("AsyncInf", ()))
    if not asyn:
        note = "no AsyncInf product found"
    elif asyn == host:
        note = "AsyncInf (asynchronous inference) priced the same"
    else:
        note = f"AsyncInf priced {', '.join(f'{v:g}' for v in asyn)} (differs; the row is the Host price)"
    offer = next(p for p in found if p.usage_component == "Host")
    basis = (f"AWS Price List API GetProducts AmazonSageMaker instanceName={instance_type} regionCode={region}, "
             f"Host (real-time inference) component; {note}; {_offer(offer)}; fetched {today}")
    return InstancePrice(instance_type=instance_type, region=region, on_demand_usd_per_hour=host[0],
                         source=pricing_client.meta.endpoint_url, as_of=today, basis=basis)


def fetch_on_demand(pricing_client: Any, instance_types: Iterable[str], region: str, *,
                    today: date | None = None) -> list[InstancePrice]:
    """On-demand rows for the types in one Region (EC2, or SageMaker for ``ml.*``), from the Price List API.

    :class:`MissingPrices` after the loop when some type had no (or an ambiguous) product; it carries the rows that
    were found. AWS errors (``botocore`` ``ClientError``, no credentials) propagate."""
    today = today or datetime.now(UTC).date()
    rows: list[InstancePrice] = []
    problems: list[str] = []
    for itype in instance_types:
        fetch = _sagemaker_row if itype.startswith("ml.") else _ec2_row
        got = fetch(pricing_client, itype, region, today)
        (problems.append if isinstance(got, str) else rows.append)(got)
    if problems:
        raise MissingPrices(problems, rows)
    return rows


def _time_weighted(points: list[tuple[datetime, float]], start: datetime, end: datetime) -> float:
    """Average of a step function (each price holds until the next change) over [start, end]."""
    points = sorted(points)
    total = 0.0
    for i, (ts, price) in enumerate(points):
        begin = max(ts, start)
        until = points[i + 1][0] if i + 1 < len(points) else end
        until = min(until, end)
        if until > begin:
            total += price * (until - begin).total_seconds()
    span = (end - max(points[0][0], start)).total_seconds()
    return total / span if span > 0 else points[-1][1]


def summarise_spot(records: Iterable[dict[str, Any]], instance_type: str, region: str, start: datetime,
                   end: datetime, source: str) -> SpotObservation | None:
    """One :class:`SpotObservation` from DescribeSpotPriceHistory records of one type (None when there are none)."""
    zones: dict[str, list[tuple[datetime, float]]] = {}
    for r in records:
        if r["InstanceType"] == instance_type:
            zones.setdefault(r["AvailabilityZone"], []).append((r["Timestamp"], float(r["SpotPrice"])))
    if not zones:
        return None
    averages = [_time_weighted(points, start, end) for points in zones.values()]
    every = [price for points in zones.values() for _, price in points]
    samples = sum(len(points) for points in zones.values())
    days = round((end - start).total_seconds() / 86400)
    basis = (f"EC2 DescribeSpotPriceHistory {SPOT_PRODUCT} in {region}, {days}-day window "
             f"{start:%Y-%m-%dT%H:%MZ}..{end:%Y-%m-%dT%H:%MZ}, {samples} price records in {len(zones)} zones: "
             f"time-weighted average per zone, averaged over zones; min and max over every record; "
             f"fetched {end.date()}")
    average = sum(averages) / len(averages)
    return SpotObservation(
        instance_type=instance_type, region=region, availability_zones=tuple(sorted(zones)),
        window_start=start.date(), window_end=end.date(), samples=samples,
        min_usd_per_hour=round(min(every), 6), average_usd_per_hour=round(average, 6),
        max_usd_per_hour=round(max(every), 6), source=source, as_of=end.date(), basis=basis)


def fetch_spot_history(ec2_client: Any, instance_types: Iterable[str], days: int = DEFAULT_DAYS, *,
                       now: datetime | None = None) -> list[SpotObservation]:
    """Spot summaries for the EC2 types in the client's Region over the last ``days`` days (``ml.*`` types are
    skipped: SageMaker has no spot price). :class:`MissingPrices` when a type had no history there."""
    if not 1 <= days <= MAX_DAYS:
        raise RefreshError(f"days ({days}) must be between 1 and {MAX_DAYS}")
    end = (now or datetime.now(UTC)).replace(microsecond=0)
    start = end - timedelta(days=days)
    wanted = sorted({t for t in instance_types if not t.startswith("ml.")})
    if not wanted:
        return []
    region = ec2_client.meta.region_name
    pages = ec2_client.get_paginator("describe_spot_price_history").paginate(
        InstanceTypes=wanted, ProductDescriptions=[SPOT_PRODUCT], StartTime=start, EndTime=end,
        PaginationConfig={"PageSize": SPOT_PAGE_SIZE})
    records = [r for page in pages for r in page.get("SpotPriceHistory", [])]
    rows: list[SpotObservation] = []
    problems: list[str] = []
    for itype in wanted:
        row = summarise_spot(records, itype, region, start, end, ec2_client.meta.endpoint_url)
        if row is None:
            problems.append(f"{itype}: no {SPOT_PRODUCT} spot price history in {region} in the last {days} days")
        else:
            rows.append(row)
    if problems:
        raise MissingPrices(problems, rows)
    return rows


def merge(existing: RefreshedPrices, on_demand: Iterable[InstancePrice] = (),
          spot: Iterable[SpotObservation] = ()) -> RefreshedPrices:
    """The stored rows with the new ones replacing those of the same (instance type, Region), sorted."""
    od = {(r.instance_type, r.region): r for r in existing.on_demand} | {(r.instance_type, r.region): r
                                                                         for r in on_demand}
    sp = {(r.instance_type, r.region): r for r in existing.spot} | {(r.instance_type, r.region): r for r in spot}
    return RefreshedPrices(on_demand=tuple(od[k] for k in sorted(od)), spot=tuple(sp[k] for k in sorted(sp)))


def write(path: Path, refreshed: RefreshedPrices) -> None:
    """Write the rows as JSON (atomically: a temporary file renamed over the target)."""
    text = json.dumps(refreshed.model_dump(mode="json"), indent=2, sort_keys=False) + "\n"
    prices.parse_refreshed(json.loads(text), path.name)  # never write what prices.py would refuse to load
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _change(old: float | None, new: float) -> str:
    if old is None:
        return f"new {new:g}"
    if abs(new - old) < 1e-9:
        return f"unchanged {new:g}"
    return f"{old:g} -> {new:g} ({(new - old) / old:+.1%})"


def diff(on_demand: Iterable[InstancePrice] = (), spot: Iterable[SpotObservation] = ()) -> list[str]:
    """One line per fetched row against what the catalogue answers now (hand-kept or previously refreshed)."""
    lines = []
    for r in on_demand:
        old = prices.INSTANCE_PRICES.get((r.instance_type, r.region))
        lines.append(f"  on-demand {r.instance_type} {r.region}: "
                     f"{_change(old.on_demand_usd_per_hour if old else None, r.on_demand_usd_per_hour)} USD/h")
    for o in spot:
        try:
            current = prices.spot_range(o.instance_type, o.region)
            was, kind = current.typical_usd_per_hour, current.kind
        except prices.PriceNotFound:  # no on-demand price there yet: nothing to compare with
            was, kind = None, "none"
        lines.append(f"  spot {o.instance_type} {o.region}: typical {_change(was, o.average_usd_per_hour)} USD/h "
                     f"(was {kind}; observed range {o.min_usd_per_hour:g}-{o.max_usd_per_hour:g})")
    return lines


def default_instance_types() -> list[str]:
    """Every instance type the catalogue prices (any Region)."""
    return sorted({t for t, _ in prices.INSTANCE_PRICES})


ClientFactory = Callable[[str, str], Any]
"""``(service, region) -> boto3 client``."""


def _boto3_clients(service: str, region: str) -> Any:
    import boto3

    return boto3.session.Session().client(service, region_name=region)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="genai-scale prices refresh",
        description="Refresh on-demand prices (AWS Price List API) and spot averages (spot price history) into "
                    "the price catalogue's data file.")
    p.add_argument("--region", action="append", dest="regions", metavar="REGION",
                   help="Region to refresh (repeatable; default us-east-1)")
    p.add_argument("--instance-types", nargs="+", metavar="TYPE",
                   help="instance types, space- or comma-separated (default: every type the catalogue prices); "
                        "ml.* types are priced as SageMaker hosting and get no spot row")
    p.add_argument("--days", type=int, default=DEFAULT_DAYS,
                   help=f"spot averaging window in days, 1-{MAX_DAYS} (default {DEFAULT_DAYS})")
    p.add_argument("--no-spot", action="store_true", help="refresh on-demand prices only")
    p.add_argument("--dry-run", action="store_true", help="print the changes; write nothing")
    p.add_argument("--out", type=Path, default=prices.DATA_FILE,
                   help="file to write (default: the catalogue's data file)")
    return p


@dataclass
class _Args:
    regions: list[str]
    types: list[str]
    days: int
    spot: bool
    dry_run: bool
    out: Path
    problems: list[str] = field(default_factory=list)


def _parse(argv: Sequence[str]) -> _Args:
    ns = _parser().parse_args(list(argv))
    regions = ns.regions or ["us-east-1"]
    types = [t for arg in (ns.instance_types or default_instance_types()) for t in arg.split(",") if t]
    args = _Args(regions, types, ns.days, not ns.no_spot, ns.dry_run, ns.out)
    args.problems += [f"--region ({r!r}) is not a Region code like 'us-east-1'" for r in regions
                      if not _REGION.match(r)]
    args.problems += [f"--instance-types ({t!r}) is not an instance type like 'g5.xlarge' or 'ml.g5.xlarge'"
                      for t in types if not _TYPE.match(t)]
    if not 1 <= ns.days <= MAX_DAYS:
        args.problems.append(f"--days ({ns.days}) must be between 1 and {MAX_DAYS}")
    if not types:
        args.problems.append("--instance-types names no instance type")
    out = Path(ns.out)
    if out.is_dir():
        args.problems.append(f"--out ({str(out)!r}) is a directory: name the JSON file to write")
    elif not out.parent.is_dir():
        args.problems.append(f"--out ({str(out)!r}): its folder {str(out.parent)!r} does not exist (or is not a "
                             "folder)")
    elif not ns.dry_run and not os.access(out.parent, os.W_OK):
        args.problems.append(f"--out ({str(out)!r}): its folder {str(out.parent)!r} is not writable")
    elif not ns.dry_run and out.exists():
        try:
            prices.load_refreshed(out)
        except prices.PriceDataError as exc:
            args.problems.append(f"--out ({str(out)!r}) holds something else than refreshed prices: {exc}")
    return args


def _aws_message(exc: Exception) -> str:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    if isinstance(exc, NoCredentialsError):
        return ("no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (the refresh "
                "needs pricing:GetProducts and ec2:DescribeSpotPriceHistory)")
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code, msg = err.get("Code", "?"), err.get("Message", "")
        op = exc.operation_name
        if code in ("ThrottlingException", "Throttling", "RequestLimitExceeded", "TooManyRequestsException"):
            return f"{op} was throttled ({code}: {msg}); retry later, or refresh fewer --instance-types at a time"
        if code in ("AccessDeniedException", "UnauthorizedOperation", "AccessDenied"):
            return (f"{op} was denied ({code}: {msg}); the refresh needs pricing:GetProducts and "
                    "ec2:DescribeSpotPriceHistory")
        return f"{op} failed ({code}: {msg})"
    if isinstance(exc, BotoCoreError):
        return f"AWS call failed: {exc}"
    return str(exc)


def main(argv: Sequence[str] | None = None, *, clients: ClientFactory = _boto3_clients,
         now: datetime | None = None) -> int:
    """``genai-scale prices refresh``: 0 when every price was refreshed, 1 on AWS errors or missing products (the
    rows that were found are still written), 2 on bad arguments."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        args = _parse(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2), already printed
        return int(exc.code or 0)
    if args.problems:
        print("error: bad arguments:\n" + "\n".join(f"  - {p}" for p in args.problems), file=sys.stderr)
        return 2
    now = now or datetime.now(UTC)
    on_demand: list[InstancePrice] = []
    spot: list[SpotObservation] = []
    failures: list[str] = []
    try:
        pricing = clients("pricing", PRICING_REGION)
        for region in args.regions:
            try:
                on_demand += fetch_on_demand(pricing, args.types, region, today=now.date())
            except MissingPrices as exc:
                on_demand += exc.rows
                failures += exc.problems
            if args.spot:
                try:
                    spot += fetch_spot_history(clients("ec2", region), args.types, args.days, now=now)
                except MissingPrices as exc:
                    spot += exc.rows
                    failures += exc.problems
    except (ClientError, BotoCoreError) as exc:
        print(f"error: {_aws_message(exc)}", file=sys.stderr)
        return 1
    except RefreshError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{'would refresh' if args.dry_run else 'refreshed'} {len(on_demand)} on-demand and {len(spot)} spot "
          f"rows in {', '.join(args.regions)}:")
    print("\n".join(diff(on_demand, spot)) or "  (nothing)")
    if not args.dry_run and (on_demand or spot):
        try:
            existing = prices.load_refreshed(args.out)
        except prices.PriceDataError as exc:
            print(f"error: {args.out} cannot be merged into: {exc}", file=sys.stderr)
            return 1
        try:
            write(args.out, merge(existing, on_demand, spot))
        except OSError as exc:
            print(f"error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        print(f"wrote {args.out}")
    for f in failures:
        print(f"error: {f}", file=sys.stderr)
    return 1 if failures else 0


__all__ = [
    "DEFAULT_DAYS",
    "MAX_DAYS",
    "MissingPrices",
    "Product",
    "RefreshError",
    "default_instance_types",
    "diff",
    "ec2_filters",
    "fetch_on_demand",
    "fetch_spot_history",
    "main",
    "merge",
    "parse_price_list_item",
    "sagemaker_filters",
    "summarise_spot",
    "write",
]
