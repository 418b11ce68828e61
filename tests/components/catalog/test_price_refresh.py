"""The price refresh against botocore's Stubber on real clients (so every request is checked against the pricing and
ec2 service models): PriceList parsing, pagination, a missing product, throttling, the spot averages by hand, the
writer round trip through prices.py, and the command's exit codes and messages."""

import json
from datetime import UTC, date, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber

from components.catalog import price_refresh as refresh
from components.catalog import prices

NOW = datetime(2026, 12, 6, 0, 0, tzinfo=UTC)
START = NOW - timedelta(days=30)
ENDPOINT = "https://api.pricing.us-east-1.amazonaws.com"


@pytest.fixture(autouse=True)
def _offline_aws(monkeypatch, tmp_path):
    # dummy credentials and no user config: the stubbed clients never reach AWS
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")
                 }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def price_list_item(attributes: dict, usd: str, *, sku: str = "JRTCKXETSKU00001", version: str = "20261201000000",
                    published: str = "2026-12-01T00:00:00Z") -> str:
    """A PriceList entry as GetProducts returns it: one JSON string per product, OnDemand terms keyed by
    ``SKU.offerTermCode`` and price dimensions by ``SKU.offerTermCode.rateCode`` (the shape of the AWS example in
    botocore's pricing examples-1.json), plus a Reserved term that must be ignored."""
    term, rate = f"{sku}.JRTCKXETXF", f"{sku}.JRTCKXETXF.6YS6EN2CT7"
    return json.dumps({
        "product": {"productFamily": "Compute Instance", "attributes": attributes, "sku": sku},
        "serviceCode": attributes.get("servicecode", "AmazonEC2"),
        "terms": {
            "OnDemand": {term: {
                "priceDimensions": {rate: {
                    "unit": "Hrs", "endRange": "Inf", "description": f"${usd} per On Demand hour", "appliesTo": [],
                    "rateCode": rate, "beginRange": "0", "pricePerUnit": {"USD": usd}}},
                "sku": sku, "effectiveDate": "2026-12-01T00:00:00Z", "offerTermCode": "JRTCKXETXF",
                "termAttributes": {}}},
            "Reserved": {f"{sku}.4NA7Y494T4": {
                "priceDimensions": {f"{sku}.4NA7Y494T4.6YS6EN2CT7": {
                    "unit": "Hrs", "pricePerUnit": {"USD": "0.4000000000"}, "rateCode": "x", "appliesTo": [],
                    "description": "reserved", "beginRange": "0", "endRange": "Inf"}},
                "sku": sku, "effectiveDate": "2026-12-01T00:00:00Z", "offerTermCode": "4NA7Y494T4",
                "termAttributes": {"LeaseContractLength": "1yr", "PurchaseOption": "No Upfront"}}},
        },
        "version": version,
        "publicationDate": published,
    })


def ec2_attributes(itype: str, region: str = "us-east-1") -> dict:
    return {"servicecode": "AmazonEC2", "instanceType": itype, "regionCode": region, "operatingSystem": "Linux",
            "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used", "marketoption": "OnDemand",
            "usagetype": f"BoxUsage:{itype}", "operation": "RunInstances", "location": "US East (N. Virginia)"}


def sm_attributes(itype: str, component: str) -> dict:
    return {"servicecode": "AmazonSageMaker", "instanceName": itype, "regionCode": "us-east-1",
            "usagetype": f"USE1-{component}:{itype}", "operation": "RunInstance"}


def products_call(service: str, filters: list, price_list: list, next_token: str | None = None,
                  token_in: str | None = None):
    params = {"ServiceCode": service, "Filters": filters, "FormatVersion": "aws_v1", "MaxResults": 100}
    if token_in:
        params["NextToken"] = token_in
    response = {"FormatVersion": "aws_v1", "PriceList": price_list}
    if next_token:
        response["NextToken"] = next_token
    return response, params


def pricing_client():
    return boto3.client("pricing", region_name="us-east-1")


def test_ec2_request_shape_and_priced_row():
    client = pricing_client()
    with Stubber(client) as stub:
        stub.add_response("get_products", *products_call(
            "AmazonEC2", refresh.ec2_filters("g5.xlarge", "us-east-1"),
            [price_list_item(ec2_attributes("g5.xlarge"), "1.0060000000")]))
        rows = refresh.fetch_on_demand(client, ["g5.xlarge"], "us-east-1", today=NOW.date())
        stub.assert_no_pending_responses()
    [row] = rows
    assert (row.instance_type, row.region, row.on_demand_usd_per_hour) == ("g5.xlarge", "us-east-1", 1.006)
    assert row.source == ENDPOINT and row.as_of == date(2026, 12, 6)
    assert "offer version 20261201000000 published 2026-12-01T00:00:00Z" in row.basis
    assert "marketoption OnDemand" in row.basis and "fetched 2026-12-06" in row.basis
    # the filters leave out Capacity Block products and every non-Linux / dedicated / BYOL variant
    assert {"Type": "TERM_MATCH", "Field": "marketoption", "Value": "OnDemand"} in refresh.ec2_filters("x.y", "r")
    assert {f["Field"] for f in refresh.ec2_filters("x.y", "r")} == {
        "instanceType", "regionCode", "operatingSystem", "tenancy", "preInstalledSw", "capacitystatus",
        "marketoption"}


def test_sagemaker_pagination_takes_host_and_compares_async_on_a_later_page():
    client = pricing_client()
    filters = refresh.sagemaker_filters("ml.g6e.2xlarge", "us-east-1")
    with Stubber(client) as stub:
        stub.add_response("get_products", *products_call(
            "AmazonSageMaker", filters,
            [price_list_item(sm_attributes("ml.g6e.2xlarge", "Train"), "3.1000000000", sku="TRAINSKU00000001"),
             price_list_item(sm_attributes("ml.g6e.2xlarge", "Host"), "2.8026000000", sku="HOSTSKU000000001")],
            next_token="page-2"))
        stub.add_response("get_products", *products_call(
            "AmazonSageMaker", filters,
            [price_list_item(sm_attributes("ml.g6e.2xlarge", "AsyncInf"), "2.8026000000", sku="ASYNCSKU00000001")],
            token_in="page-2"))
        [row] = refresh.fetch_on_demand(client, ["ml.g6e.2xlarge"], "us-east-1", today=NOW.date())
        stub.assert_no_pending_responses()
    assert row.on_demand_usd_per_hour == 2.8026  # Host, not the training price
    assert "AsyncInf (asynchronous inference) priced the same" in row.basis


def test_usage_component_strips_the_region_prefix():
    def component(usage):
        return refresh.Product({"usagetype": usage}, (), "", "").usage_component

    assert component("USE1-Host:ml.g5.xlarge") == "Host"
    assert component("USW2-AsyncInf:ml.g5.xlarge") == "AsyncInf"
    assert component("Host:ml.g5.xlarge") == "Host"


def test_a_missing_product_is_named_and_the_found_rows_are_kept():
    client = pricing_client()
    with Stubber(client) as stub:
        stub.add_response("get_products", *products_call(
            "AmazonEC2", refresh.ec2_filters("g5.xlarge", "us-east-1"),
            [price_list_item(ec2_attributes("g5.xlarge"), "1.0060000000")]))
        stub.add_response("get_products", *products_call(
            "AmazonEC2", refresh.ec2_filters("p9.96xlarge", "us-east-1"), []))
        with pytest.raises(refresh.MissingPrices) as exc:
            refresh.fetch_on_demand(client, ["g5.xlarge", "p9.96xlarge"], "us-east-1", today=NOW.date())
    assert exc.value.problems == ["p9.96xlarge: no AmazonEC2 on-demand Linux product in us-east-1"]
    assert [r.instance_type for r in exc.value.rows] == ["g5.xlarge"]


def test_two_products_with_different_prices_are_not_stored():
    client = pricing_client()
    with Stubber(client) as stub:
        stub.add_response("get_products", *products_call(
            "AmazonEC2", refresh.ec2_filters("g5.xlarge", "us-east-1"),
            [price_list_item(ec2_attributes("g5.xlarge"), "1.0060000000", sku="SKUA000000000001"),
             price_list_item(ec2_attributes("g5.xlarge"), "1.2000000000", sku="SKUB000000000001")]))
        with pytest.raises(refresh.MissingPrices, match=r"g5.xlarge: 2 AmazonEC2 products in us-east-1 with "
                                                        r"different prices \(1.006, 1.2\); not stored"):
            refresh.fetch_on_demand(client, ["g5.xlarge"], "us-east-1", today=NOW.date())


def test_a_malformed_price_list_entry_is_one_message():
    with pytest.raises(refresh.RefreshError, match=r"unexpected PriceList entry from the Price List API \(KeyError"):
        refresh.parse_price_list_item('{"terms": {}}')
    assert refresh.parse_price_list_item(price_list_item(ec2_attributes("g5.xlarge"), "0.0000000000")).usd_per_hour \
        == ()


def spot_record(az: str, price: str, at: datetime, itype: str = "g5.xlarge") -> dict:
    return {"AvailabilityZone": az, "InstanceType": itype, "ProductDescription": "Linux/UNIX", "SpotPrice": price,
            "Timestamp": at}


def spot_params(types: list[str]) -> dict:
    return {"InstanceTypes": types, "ProductDescriptions": ["Linux/UNIX"], "StartTime": START, "EndTime": NOW,
            "MaxResults": 1000}


def test_spot_history_time_weighted_over_zones_across_pages():
    ec2 = boto3.client("ec2", region_name="us-east-1")
    with Stubber(ec2) as stub:
        # us-east-1a: 0.30 in effect at the window start (set 2 days before it), 0.40 for the last 10 days
        stub.add_response("describe_spot_price_history", {"NextToken": "n2", "SpotPriceHistory": [
            spot_record("us-east-1a", "0.300000", START - timedelta(days=2)),
            spot_record("us-east-1a", "0.400000", NOW - timedelta(days=10)),
        ]}, spot_params(["g5.xlarge"]))
        # us-east-1b: 0.20 the whole window
        stub.add_response("describe_spot_price_history", {"SpotPriceHistory": [
            spot_record("us-east-1b", "0.200000", START - timedelta(hours=1)),
        ]}, {**spot_params(["g5.xlarge"]), "NextToken": "n2"})
        [row] = refresh.fetch_spot_history(ec2, ["g5.xlarge", "ml.g5.xlarge"], 30, now=NOW)
        stub.assert_no_pending_responses()
    # 1a: (0.30 x 20 days + 0.40 x 10 days) / 30 = 0.3333; 1b: 0.20; mean over zones = 0.26667
    assert row.average_usd_per_hour == pytest.approx((1 / 3 + 0.2) / 2, abs=1e-6)
    assert (row.min_usd_per_hour, row.max_usd_per_hour, row.samples) == (0.2, 0.4, 3)
    assert row.availability_zones == ("us-east-1a", "us-east-1b")
    assert (row.window_start, row.window_end, row.as_of) == (date(2026, 11, 6), date(2026, 12, 6), date(2026, 12, 6))
    assert row.source == "https://ec2.us-east-1.amazonaws.com"
    assert "30-day window" in row.basis and "3 price records in 2 zones" in row.basis


def test_spot_without_history_is_named_and_days_are_bounded():
    ec2 = boto3.client("ec2", region_name="us-west-2")
    with Stubber(ec2) as stub:
        stub.add_response("describe_spot_price_history", {"SpotPriceHistory": []}, spot_params(["p5.48xlarge"]))
        with pytest.raises(refresh.MissingPrices) as exc:
            refresh.fetch_spot_history(ec2, ["p5.48xlarge"], 30, now=NOW)
    assert exc.value.problems == ["p5.48xlarge: no Linux/UNIX spot price history in us-west-2 in the last 30 days"]
    with pytest.raises(refresh.RefreshError, match=r"days \(91\) must be between 1 and 90"):
        refresh.fetch_spot_history(ec2, ["g5.xlarge"], 91, now=NOW)
    assert refresh.fetch_spot_history(ec2, ["ml.g5.xlarge"], 30, now=NOW) == []  # SageMaker: no spot, no call


def _od_row(usd: float = 1.1, itype: str = "g5.xlarge") -> prices.InstancePrice:
    return prices.InstancePrice(instance_type=itype, region="us-east-1", on_demand_usd_per_hour=usd,
                                source=ENDPOINT, as_of=NOW.date(), basis="a refreshed test row, fetched today")


def _spot_row() -> prices.SpotObservation:
    return prices.SpotObservation(
        instance_type="g5.xlarge", region="us-east-1", availability_zones=("us-east-1a",),
        window_start=START.date(), window_end=NOW.date(), samples=4, min_usd_per_hour=0.2,
        average_usd_per_hour=0.3, max_usd_per_hour=0.5, source="https://ec2.us-east-1.amazonaws.com",
        as_of=NOW.date(), basis="a refreshed test spot row over 30 days")


def test_writer_round_trip_and_refreshed_rows_win(tmp_path):
    path = tmp_path / "prices.json"
    refresh.write(path, refresh.merge(prices.RefreshedPrices(), [_od_row()], [_spot_row()]))
    loaded = prices.load_refreshed(path)
    assert loaded.on_demand == (_od_row(),) and loaded.spot == (_spot_row(),)
    merged = prices.with_refreshed(loaded)
    assert merged[("g5.xlarge", "us-east-1")].on_demand_usd_per_hour == 1.1  # not the hand-kept 1.006
    assert merged[("g5.2xlarge", "us-east-1")] == prices.HAND_KEPT_PRICES[("g5.2xlarge", "us-east-1")]
    # a later refresh replaces its own rows and keeps the others
    again = refresh.merge(loaded, [_od_row(1.2), _od_row(2.0, "g6.xlarge")])
    assert [(r.instance_type, r.on_demand_usd_per_hour) for r in again.on_demand] == [("g5.xlarge", 1.2),
                                                                                      ("g6.xlarge", 2.0)]
    assert again.spot == loaded.spot
    assert not list(tmp_path.glob("*.tmp"))


def test_a_stored_row_without_source_or_date_fails_with_its_path(tmp_path):
    row = _od_row().model_dump(mode="json")
    bad = {"on_demand": [{k: v for k, v in row.items() if k != "source"}],
           "spot": [{k: v for k, v in _spot_row().model_dump(mode="json").items() if k != "as_of"}]}
    with pytest.raises(prices.PriceDataError) as exc:
        prices.parse_refreshed(bad)
    assert str(exc.value) == ("prices.json has 2 problem(s):\n"
                              "  - prices.json: on_demand[0].source: Field required\n"
                              "  - prices.json: spot[0].as_of: Field required")
    path = tmp_path / "prices.json"
    path.write_text("{not json")
    with pytest.raises(prices.PriceDataError, match=r"prices.json: not valid JSON"):
        prices.load_refreshed(path)
    assert prices.load_refreshed(tmp_path / "absent.json") == prices.RefreshedPrices()
    with pytest.raises(prices.PriceDataError, match=r"spot\[0\]: Value error, min_usd_per_hour \(0.2\) <= "):
        prices.parse_refreshed({"spot": [{**_spot_row().model_dump(mode="json"), "average_usd_per_hour": 0.1}]})


def test_the_shipped_data_file_loads_and_every_row_is_sourced():
    shipped = prices.load_refreshed()
    assert shipped == prices.REFRESHED
    for row in [*shipped.on_demand, *shipped.spot]:
        assert row.source.startswith("https://") and row.as_of and len(row.basis) >= 10, row


def test_spot_range_uses_an_observed_row_when_stored(monkeypatch):
    monkeypatch.setitem(prices.SPOT_OBSERVED, ("g5.xlarge", "us-east-1"), _spot_row())
    got = prices.spot_range("g5.xlarge")
    assert (got.kind, got.low_usd_per_hour, got.typical_usd_per_hour, got.high_usd_per_hour) == (
        "observed", 0.2, 0.3, 0.5)
    assert got.on_demand_usd_per_hour == 1.006 and got.source == "https://ec2.us-east-1.amazonaws.com"
    assert "observed spot price history 2026-11-06..2026-12-06 in us-east-1a" in got.basis


class _Clients:
    """The client factory main() takes: real clients under Stubber, recorded for the assertions."""

    def __init__(self):
        self.made: dict[tuple[str, str], object] = {}
        self.stubs: list[Stubber] = []

    def __call__(self, service: str, region: str):
        client = boto3.client(service, region_name=region)
        stub = Stubber(client)
        if service == "pricing":
            stub.add_response("get_products", *products_call(
                "AmazonEC2", refresh.ec2_filters("g5.xlarge", "us-east-1"),
                [price_list_item(ec2_attributes("g5.xlarge"), "1.0100000000")]))
        else:
            stub.add_response("describe_spot_price_history", {"SpotPriceHistory": [
                spot_record("us-east-1a", "0.310000", START - timedelta(days=1))]}, spot_params(["g5.xlarge"]))
        stub.activate()
        self.made[(service, region)] = client
        self.stubs.append(stub)
        return client


def test_main_writes_the_refreshed_rows(tmp_path, capsys):
    out = tmp_path / "prices.json"
    clients = _Clients()
    code = refresh.main(["--region", "us-east-1", "--instance-types", "g5.xlarge", "--out", str(out)],
                        clients=clients, now=NOW)
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert set(clients.made) == {("pricing", "us-east-1"), ("ec2", "us-east-1")}
    for stub in clients.stubs:
        stub.assert_no_pending_responses()
    stored = prices.load_refreshed(out)
    assert [(r.instance_type, r.on_demand_usd_per_hour) for r in stored.on_demand] == [("g5.xlarge", 1.01)]
    assert [(r.instance_type, r.average_usd_per_hour) for r in stored.spot] == [("g5.xlarge", 0.31)]
    assert "on-demand g5.xlarge us-east-1: 1.006 -> 1.01 (+0.4%) USD/h" in printed.out
    assert "spot g5.xlarge us-east-1: typical 0.3018 -> 0.31 (+2.7%) USD/h (was typical-discount" in printed.out
    assert f"wrote {out}" in printed.out


def test_main_dry_run_writes_nothing(tmp_path, capsys):
    out = tmp_path / "prices.json"
    code = refresh.main(["--instance-types", "g5.xlarge", "--dry-run", "--out", str(out)], clients=_Clients(),
                        now=NOW)
    assert code == 0 and not out.exists()
    assert "would refresh 1 on-demand and 1 spot rows in us-east-1:" in capsys.readouterr().out


def test_main_throttling_is_one_message_and_exit_1(tmp_path, capsys):
    def throttled(service, region):
        client = boto3.client(service, region_name=region)
        stub = Stubber(client)
        stub.add_client_error("get_products", service_error_code="ThrottlingException", service_message="Rate exceeded",
                              http_status_code=400)
        stub.activate()
        return client

    out = tmp_path / "prices.json"
    code = refresh.main(["--instance-types", "g5.xlarge", "--out", str(out)], clients=throttled, now=NOW)
    err = capsys.readouterr().err
    assert code == 1 and not out.exists()
    assert err == ("error: GetProducts was throttled (ThrottlingException: Rate exceeded); retry later, or refresh "
                   "fewer --instance-types at a time\n")


def test_main_without_credentials_is_one_message(monkeypatch, capsys):
    from botocore.exceptions import NoCredentialsError

    def no_creds(service, region):
        raise NoCredentialsError()

    assert refresh.main(["--instance-types", "g5.xlarge"], clients=no_creds, now=NOW) == 1
    assert capsys.readouterr().err.startswith("error: no AWS credentials found: set AWS_PROFILE or ")


def test_main_missing_product_writes_the_rest_and_exits_1(tmp_path, capsys):
    def clients(service, region):
        client = boto3.client(service, region_name=region)
        stub = Stubber(client)
        stub.add_response("get_products", *products_call(
            "AmazonEC2", refresh.ec2_filters("g5.xlarge", "us-east-1"),
            [price_list_item(ec2_attributes("g5.xlarge"), "1.0100000000")]))
        stub.add_response("get_products", *products_call(
            "AmazonEC2", refresh.ec2_filters("p9.96xlarge", "us-east-1"), []))
        stub.activate()
        return client

    out = tmp_path / "prices.json"
    code = refresh.main(["--instance-types", "g5.xlarge,p9.96xlarge", "--no-spot", "--out", str(out)],
                        clients=clients, now=NOW)
    err = capsys.readouterr().err
    assert code == 1 and "error: p9.96xlarge: no AmazonEC2 on-demand Linux product in us-east-1" in err
    assert [r.instance_type for r in prices.load_refreshed(out).on_demand] == ["g5.xlarge"]


def test_main_bad_arguments_exit_2_listing_every_problem(capsys):
    def never(service, region):
        raise AssertionError("no client for bad arguments")

    code = refresh.main(["--region", "mars", "--instance-types", "G5 xlarge", "--days", "0"], clients=never)
    assert code == 2
    assert capsys.readouterr().err == (
        "error: bad arguments:\n"
        "  - --region ('mars') is not a Region code like 'us-east-1'\n"
        "  - --instance-types ('G5 xlarge') is not an instance type like 'g5.xlarge' or 'ml.g5.xlarge'\n"
        "  - --days (0) must be between 1 and 90\n")
    assert refresh.main(["--days", "many"], clients=never) == 2  # argparse's own usage error
    assert "invalid int value: 'many'" in capsys.readouterr().err


def test_default_instance_types_are_every_priced_type():
    types = refresh.default_instance_types()
    assert "g5.xlarge" in types and "ml.g6e.2xlarge" in types and len(types) == len(set(types))
    assert set(types) == {t for t, _ in prices.INSTANCE_PRICES}


def test_main_connection_and_access_errors_are_one_message(capsys):
    from botocore.exceptions import EndpointConnectionError

    def unreachable(service, region):
        raise EndpointConnectionError(endpoint_url="https://api.pricing.us-east-1.amazonaws.com/")

    assert refresh.main(["--instance-types", "g5.xlarge"], clients=unreachable, now=NOW) == 1
    assert capsys.readouterr().err == ('error: AWS call failed: Could not connect to the endpoint URL: '
                                       '"https://api.pricing.us-east-1.amazonaws.com/"\n')

    def denied(service, region):
        client = boto3.client(service, region_name=region)
        stub = Stubber(client)
        stub.add_client_error("get_products", service_error_code="AccessDeniedException",
                              service_message="not authorized to perform: pricing:GetProducts", http_status_code=403)
        stub.activate()
        return client

    assert refresh.main(["--instance-types", "g5.xlarge"], clients=denied, now=NOW) == 1
    assert capsys.readouterr().err == (
        "error: GetProducts was denied (AccessDeniedException: not authorized to perform: pricing:GetProducts); the "
        "refresh needs pricing:GetProducts and ec2:DescribeSpotPriceHistory\n")


def test_main_refuses_an_out_path_it_cannot_write_before_calling_aws(tmp_path, capsys):
    def never(service, region):
        raise AssertionError("no client for bad arguments")

    afile = tmp_path / "a-file"
    afile.write_text("x")
    assert refresh.main(["--out", str(afile / "prices.json")], clients=never) == 2
    assert "its folder" in capsys.readouterr().err
    assert refresh.main(["--out", str(tmp_path)], clients=never) == 2
    assert "is a directory: name the JSON file to write" in capsys.readouterr().err


def test_main_refuses_an_out_file_it_could_not_merge_into_and_no_types(tmp_path, capsys):
    def never(service, region):
        raise AssertionError("no client for bad arguments")

    other = tmp_path / "other.json"
    other.write_bytes(b"\xff\xfe not json")
    assert refresh.main(["--out", str(other)], clients=never) == 2
    assert "holds something else than refreshed prices" in capsys.readouterr().err
    assert refresh.main(["--instance-types", ",", "--out", str(tmp_path / "p.json")], clients=never) == 2
    assert "--instance-types names no instance type" in capsys.readouterr().err
