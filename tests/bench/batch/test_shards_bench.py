"""bench/batch/shards.py: its pure pieces (arguments, the interruption schedule, the exactly-once check, the rerun
count, the table and the ratios). The bench itself (worker processes, minutes) is run by hand."""

from collections import Counter

import pytest

from bench.batch import shards as bench


def row(size: int, extra: int, wall: float, objects: int, messages: int, check: str = "ok") -> bench.Row:
    return bench.Row(size=size, shards=messages, shard_seconds=bench.shard_seconds(size, 40, 8), sigterm=2,
                     sigkill=1, reruns=bench.Reruns(1000 + extra, extra // 2, extra, 3), records=1000,
                     wall_seconds=wall, s3_objects=objects, sqs_messages=messages, check=check)


def test_defaults_and_sizes():
    a = bench.parse([])
    assert (a.records, a.sizes, a.latency_ms, a.concurrency, a.workers) == (10_000, [50, 200, 1000, 5000], 40, 8, 2)
    assert (a.interruptions, a.mean_gap_seconds, a.visibility_seconds, a.seed) == (10, 5, 6, 15)
    assert bench.validate(a) == []
    assert bench.parse(["--sizes", "10, 20"]).sizes == [10, 20]
    with pytest.raises(SystemExit):
        bench.parse(["--sizes", "10,x"])


def test_every_bad_argument_is_listed():
    a = bench.parse(["--records", "0", "--workers", "0", "--latency-ms", "0", "--interruptions", "-1",
                     "--sizes", "5,5"])
    assert [p.render() for p in bench.validate(a)] == [
        "--records = 0: must be >= 1", "--workers = 0: must be >= 1", "--latency-ms = 0.0: must be > 0",
        "--interruptions = -1: must be >= 0", "--sizes = '5,5': distinct record counts >= 1"]
    big = bench.validate(bench.parse(["--records", "100", "--sizes", "50,200"]))
    assert [p.render() for p in big] == ["--sizes = '50,200': each size <= --records (100)"]
    assert bench.main(["--records", "0"]) == 2


def test_shard_seconds_is_size_times_latency_over_concurrency():
    assert bench.shard_seconds(1000, 40, 8) == pytest.approx(5.0)
    assert bench.shard_seconds(50, 40, 8) == pytest.approx(0.25)


def test_the_schedule_is_seeded_ordered_and_half_each_signal():
    a = bench.schedule(15, 7, 5.0, 2)
    assert a == bench.schedule(15, 7, 5.0, 2), "same seed, same schedule"
    assert a != bench.schedule(16, 7, 5.0, 2)
    assert [i.at for i in a] == sorted(i.at for i in a) and a[0].at > 0
    assert Counter(i.sig for i in a) == {"SIGTERM": 4, "SIGKILL": 3}
    assert {i.slot for i in a} <= {0, 1}
    assert bench.schedule(1, 0, 5.0, 2) == []


def test_exactly_once_finds_missing_repeated_and_unknown_ids():
    ids = bench.custom_ids(4)
    assert ids == ["req-00000", "req-00001", "req-00002", "req-00003"]
    out = [{"custom_id": i} for i in ids[:3]]
    assert bench.exactly_once(ids, out, [{"custom_id": "req-00003"}]) == [], "an error line counts as present"
    assert bench.exactly_once(ids, out + [{"custom_id": "req-00001"}, {"custom_id": "zzz"}], []) == [
        "1 custom_id missing: req-00003", "1 custom_id repeated: req-00001", "1 custom_id unknown: zzz"]
    many = bench.exactly_once(bench.custom_ids(7), [], [])
    assert many == ["7 custom_id missing: req-00000, req-00001, req-00002, req-00003, req-00004 ..."]


def test_reruns_count_lost_work_from_requests_per_id():
    r = bench.reruns(Counter({"a": 1, "b": 3, "c": 2}), 3)
    assert r == bench.Reruns(requests=6, records_rerun=2, extra_requests=3, most_runs=3)
    assert bench.reruns(Counter(), 0) == bench.Reruns(0, 0, 0, 0)


def test_table_has_a_column_per_measure_and_a_row_per_size():
    text = bench.table([row(50, 20, 10.0, 804, 200), row(5000, 700, 14.4, 12, 2, check="1 custom_id missing: x")])
    head, rule, a, b = text.splitlines()
    assert head.split("  ")[0].strip() == "shard" and head.endswith("exactly once")
    assert len(rule.split()) == len(bench.COLUMNS)
    assert a.split() == ["50", "200", "0.25", "2", "1", "10", "20", "2.0", "3", "10.0", "804", "200", "ok"]
    assert b.split()[:12] == ["5,000", "2", "25.00", "2", "1", "350", "700", "70.0", "3", "14.4", "12", "2"]
    assert b.endswith("1 custom_id missing: x")
    assert len(head) >= len(a), "numbers aligned under their headers"


def test_ratios_are_against_the_smallest_size():
    text = bench.ratios([row(1000, 250, 12.0, 44, 10), row(50, 25, 10.0, 804, 200)])
    lines = text.splitlines()
    assert lines[0] == "ratios against the smallest size (50 records per shard, same run):"
    assert lines[2].split() == ["50", "1.00x", "1.00x", "1.00x", "1.00x"]
    assert lines[3].split() == ["1,000", "10.00x", "1.20x", "0.05x", "0.05x"]
    assert bench.ratio(0, 0) == "0x" and bench.ratio(3, 0) == "- (baseline 0)"


def test_the_batch_input_passes_the_batch_validation():
    from serving.batch.validate import Limits, validate_batch

    records = validate_batch(bench.batch_input(3), Limits(allowed_models=(bench.MODEL,)))
    assert [r.custom_id for r in records] == bench.custom_ids(3)
