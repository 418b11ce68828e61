"""Throughput profiles: interpolation, SLO-bounded points, size classes, the choice of profile, validation, and the
roofline estimate calibrated against the published NIM tables."""

from datetime import date

import pytest
from pydantic import ValidationError

from components.catalog import accelerators
from components.catalog import throughput as t
from components.catalog.throughput import ProfilePoint, ThroughputProfile

TODAY = date(2026, 12, 6)


def _profile(points, **kw) -> ThroughputProfile:
    base = {"model": "8b", "params_billion": 8.03, "accelerator": "H100", "precision": "fp8", "input_tokens": 200,
            "output_tokens": 200, "latency_stat": "p95", "basis": "measured",
            "source": "vllm bench serve, run 2026-12-01", "as_of": TODAY}
    base.update(kw)
    return ThroughputProfile(points=tuple(ProfilePoint(concurrency=c, output_tokens_per_second=tps, ttft_ms=ttft,
                                                       itl_ms=itl) for c, tps, ttft, itl in points), **base)


# two points: concurrency 1 (100 tok/s, TTFT 10 ms, ITL 5 ms) and 5 (400 tok/s, TTFT 30 ms, ITL 10 ms)
SIMPLE = _profile([(1, 100, 10, 5), (5, 400, 30, 10)])


def _triple(p: ProfilePoint) -> tuple[float, float, float]:
    return (round(p.output_tokens_per_second, 6), round(p.ttft_ms, 6), round(p.itl_ms, 6))


def test_at_interpolates_linearly_between_points():
    # concurrency 3 is half way from 1 to 5: 100 + 300/2, 10 + 20/2, 5 + 5/2
    assert _triple(SIMPLE.at(3)) == (250, 20, 7.5)
    assert _triple(SIMPLE.at(2)) == (175, 15, 6.25)
    assert SIMPLE.at(5) == SIMPLE.points[1] and SIMPLE.at(1) == SIMPLE.points[0]


def test_at_scales_below_the_first_point_and_plateaus_above_the_last():
    p = _profile([(4, 200, 12, 6), (8, 300, 20, 8)])
    assert _triple(p.at(1)) == (50, 12, 6)            # 200 x 1/4; latencies of the first point
    assert _triple(SIMPLE.at(10)) == (400, 60, 20)    # throughput stays; TTFT and ITL x 10/5
    with pytest.raises(ValueError, match=r"concurrency \(0\) must be >= 1"):
        SIMPLE.at(0)


def test_best_within_picks_the_highest_throughput_inside_the_slo():
    assert SIMPLE.best_within(ttft_ms=20, itl_ms=None).concurrency == 3          # TTFT(3) = 20, TTFT(4) = 25
    assert _triple(SIMPLE.best_within(ttft_ms=None, itl_ms=6.25)) == (175, 15, 6.25)  # ITL(2) = 6.25
    assert SIMPLE.best_within(ttft_ms=None, itl_ms=None).concurrency == 5
    assert SIMPLE.best_within(ttft_ms=25, itl_ms=6.25).concurrency == 2          # the tighter bound decides
    assert SIMPLE.best_within(ttft_ms=5, itl_ms=None) is None                     # even concurrency 1 misses


def test_best_within_on_the_nim_table():
    nim = t.NIM_LLAMA_3_1_8B
    # no SLO: the peak row (200: 13,348.4 tok/s), not the last (250: 12,964.72)
    assert nim.best_within(ttft_ms=None, itl_ms=None).concurrency == 200
    # TTFT <= 100 ms: between 50 (67.41 ms) and 100 (119.97 ms) TTFT rises 1.0512 ms per request: c = 81 gives
    # 99.997 ms, 82 gives 101.05; throughput at 81 = 8,018.23 + 31 x (12,214.97 - 8,018.23) / 50 = 10,620.2078
    best = nim.best_within(ttft_ms=100, itl_ms=None)
    assert best.concurrency == 81 and best.output_tokens_per_second == pytest.approx(10620.2078)
    assert nim.best_within(ttft_ms=None, itl_ms=4.5) is None  # ITL is 4.58-4.63 ms at the lowest concurrencies


@pytest.mark.parametrize("params,label", [
    (0.494, "1b"), (1.24, "1b"), (1.7, "1b"), (1.8, "3b"), (3.21, "3b"), (4.8, "3b"), (5.0, "8b"), (7.25, "8b"),
    (8.03, "8b"), (10.5, "8b"), (10.7, "14b"), (14.8, "14b"), (21, "14b"), (21.5, "32b"), (32.8, "32b"),
    (47, "32b"), (48, "70b"), (70.6, "70b"), (72.7, "70b"), (112, "70b"), (113, "180b"), (180, "180b"),
    (269, "180b"), (271, "405b"), (406, "405b"), (1000, "405b"),
])
def test_size_class_bins(params, label):
    # edges are geometric means of neighbouring centres: 1.73, 4.90, 10.58, 21.17, 47.33, 112.25, 270.0
    assert t.size_class(params) == label


def test_size_class_rejects_non_positive():
    with pytest.raises(ValueError, match=r"params_billion \(0\) must be > 0"):
        t.size_class(0)


def test_profile_for_prefers_user_then_catalogue_then_estimate():
    named = _profile([(1, 150, 20, 7)], model="meta-llama/Llama-3.1-8B-Instruct")
    by_class = _profile([(1, 120, 25, 8)], model="8b")
    other_precision = _profile([(1, 90, 30, 9)], model="meta-llama/Llama-3.1-8B-Instruct", precision="bf16")

    # 1. a user profile naming the model beats one for the size class, and both beat the catalogue
    got = t.profile_for(8.03, "H100", "fp8", model="META-LLAMA/Llama-3.1-8B-Instruct", user=[by_class, named])
    assert got is named
    assert t.profile_for(8.03, "H100", "fp8", user=[by_class]) is by_class
    # a user profile of another model of the same class does not apply to this one
    assert t.profile_for(7.62, "H100", "fp8", model="Qwen/Qwen2.5-7B-Instruct", user=[named]) is t.NIM_LLAMA_3_1_8B
    # 2. no user profile for fp8: the catalogue's published row of the size class
    got = t.profile_for(8.03, "H100", "fp8", model="meta-llama/Llama-3.1-8B-Instruct", user=[other_precision])
    assert got is t.NIM_LLAMA_3_1_8B and got.basis == "published"
    assert t.profile_for(70.6, "H100", "fp8", tensor_parallel=2) is t.NIM_LLAMA_3_3_70B
    # 3. no catalogue row for this TP (or accelerator): an estimate for the given request shape
    est = t.profile_for(70.6, "H100", "fp8", tensor_parallel=4, input_tokens=500, output_tokens=100)
    assert (est.basis, est.model, est.tensor_parallel, est.input_tokens, est.output_tokens) == (
        "estimated", "70b", 4, 500, 100)
    assert t.profile_for(8.03, "L4", "bf16").basis == "estimated"


def test_profile_for_unknown_accelerator():
    with pytest.raises(ValueError, match=r"accelerator \('MI300X'\) has no datasheet figures to estimate from; "
                                         r"known: A100, A100-80GB, A10G, H100, H200, Inferentia2, L4, L40S, Trainium"):
        t.profile_for(8, "MI300X", "bf16")
    mine = _profile([(1, 300, 9, 3)], accelerator="MI300X", precision="bf16")
    assert t.profile_for(8, "MI300X", "bf16", user=[mine]) is mine


# --- validation ---------------------------------------------------------------------------------------------------

def test_published_profile_needs_a_url():
    with pytest.raises(ValidationError, match=r"source \('the NIM docs'\): a published profile needs an https:// "
                                              r"URL or a seed reference"):
        _profile([(1, 100, 10, 5)], basis="published", source="the NIM docs")


def test_estimated_profile_needs_assumptions():
    with pytest.raises(ValidationError, match=r"assumptions: required when basis is 'estimated'"):
        _profile([(1, 100, 10, 5)], basis="estimated")


def test_concurrency_must_strictly_increase():
    with pytest.raises(ValidationError, match=r"points: concurrency must strictly increase \(got 1, 5, 5\)"):
        _profile([(1, 100, 10, 5), (5, 400, 30, 10), (5, 410, 31, 11)])
    with pytest.raises(ValidationError, match=r"points: at least one point is required"):
        _profile([])


def test_every_problem_is_listed_at_once():
    with pytest.raises(ValidationError) as err:
        _profile([(2, 100, 10, 5), (1, 50, 9, 4)], basis="estimated")
    message = str(err.value)
    assert "throughput profile '8b' on H100: points: concurrency must strictly increase (got 2, 1); " \
           "assumptions: required" in message


def test_every_catalogue_profile_and_chip_is_sourced_and_dated():
    for p in t.PROFILES:
        assert p.basis == "published" and p.source.startswith("https://"), p.model
        assert isinstance(p.as_of, date) and p.note, p.model
    for name, chip in accelerators.CHIP_SPECS.items():
        assert chip.accelerator == name and chip.source.startswith("https://") and isinstance(chip.as_of, date)
    with pytest.raises(ValidationError, match=r"source\n  String should match pattern '\^https://'"):
        accelerators.ChipSpec(accelerator="X", memory_gb=1, memory_bandwidth_gb_per_second=1, bf16_dense_tflops=1,
                              source="a blog", as_of=TODAY)


def test_figures_are_the_profile_rows_rounded():
    assert t.figure("llama-3.1-8b-instruct", "online").value == round(4678.88)
    assert t.figure("llama-3.1-8b-instruct", "batch").value == 13300     # 13,348.4 at 200, to hundreds
    assert t.figure("llama-3.3-70b-instruct", "online").value == 623     # 623.4
    assert t.figure("llama-3.3-70b-instruct", "batch").value == 920      # 917.26 at 100, to tens


# --- chips --------------------------------------------------------------------------------------------------------

def test_every_catalogue_accelerator_has_chip_figures():
    for spec in accelerators.CATALOG.values():
        chip = accelerators.chip_spec(spec.accelerator, spec.memory_mib)
        assert chip is not None, spec.instance_type
    assert accelerators.chip_spec("A100", 81920).memory_bandwidth_gb_per_second == 2039   # p4de
    assert accelerators.chip_spec("A100", 40960).memory_bandwidth_gb_per_second == 1555   # p4d
    assert accelerators.chip_spec("MI300X") is None


def test_dense_tflops_per_precision():
    chips = accelerators.CHIP_SPECS
    assert chips["H100"].dense_tflops("fp8") == 1979 and chips["H100"].dense_tflops("bf16") == 989.5
    assert chips["A100"].dense_tflops("fp8") == 312        # no FP8 math on Ampere: BF16
    assert chips["L4"].dense_tflops("int8") == 242.5 and chips["L4"].dense_tflops("int4") == 121


# --- the estimate -------------------------------------------------------------------------------------------------

CALIBRATION_TOLERANCE = 0.3
"""The estimate lands within 30 % of the published NIM figures below saturation (8B up to concurrency 100, 70B up
to 50; above that the 8B engine plateaus at ~13k tok/s, which the roofline does not model, and the 70B queues)."""


@pytest.mark.parametrize("published,kw,upto", [
    (t.NIM_LLAMA_3_1_8B, {}, 100),
    (t.NIM_LLAMA_3_3_70B, {"tensor_parallel": 2}, 50),
])
def test_estimate_is_calibrated_on_the_nim_tables(published, kw, upto):
    est = t.estimate(published.params_billion, published.accelerator, published.precision,
                     input_tokens=published.input_tokens, output_tokens=published.output_tokens, **kw)
    off = []
    for p in published.points:
        if p.concurrency > upto:
            continue
        e = est.at(p.concurrency)
        for field in ("output_tokens_per_second", "ttft_ms", "itl_ms"):
            ratio = getattr(e, field) / getattr(p, field)
            if abs(ratio - 1) > CALIBRATION_TOLERANCE:
                off.append(f"c={p.concurrency} {field}: {ratio:.2f}")
    assert off == []


def test_estimate_decode_step_by_hand():
    # Llama-3.1-8B FP8 on one H100, 200 in / 200 out, concurrency 1: weights 8.03e9 B + KV of 300 tokens x
    # (2 x 32 layers x 8 heads x 128 x 1 B = 65,536 B) = 8,049,660,800 B / (3,350e9 x 0.55) = 4.36888 ms;
    # prefill interference at one request adds under 1 %
    est = t.estimate(8.03, "H100", "fp8", input_tokens=200, output_tokens=200)
    assert est.points[0].itl_ms == pytest.approx(4.36888, rel=0.01)
    assert est.points[0].itl_ms >= 4.36888
    # every point is the closed loop's rate: tokens/s = c x output / (TTFT + (output - 1) x ITL)
    for p in est.points:
        assert p.output_tokens_per_second == pytest.approx(
            p.concurrency * 200 / ((p.ttft_ms + 199 * p.itl_ms) / 1e3), rel=1e-6)
    assert (est.basis, est.model, est.latency_stat) == ("estimated", "8b", "mean")
    assert "65536 KV bytes per token" in est.assumptions


def test_estimate_kv_cache_bounds_the_points():
    # 70.6B FP8 on 2 x H100: 2 x 80e9 x 0.9 - 70.6e9 = 73.4e9 B free; a 5,500-token request holds
    # 5,500 x (2 x 80 x 8 x 128 x 1 B) = 901,120,000 B: 81 requests
    est = t.estimate(70.6, "H100", "fp8", tensor_parallel=2, input_tokens=5000, output_tokens=500)
    assert [p.concurrency for p in est.points] == [1, 2, 4, 8, 16, 32, 64, 81]
    assert "KV cache holds 81 requests of 5500 tokens" in est.assumptions


def test_pipeline_parallel_multiplies_latency_not_throughput_per_device():
    tp4 = t.estimate(70.6, "H100", "bf16", tensor_parallel=4)
    tp2pp2 = t.estimate(70.6, "H100", "bf16", tensor_parallel=2, pipeline_parallel=2)
    # the same four GPUs: a token passes two stages in turn, so ITL at one request is about twice TP=4's
    assert tp2pp2.points[0].itl_ms / tp4.points[0].itl_ms == pytest.approx(2, rel=0.05)
    # with the pipeline full, tokens/s per GPU stay close to tensor parallelism's
    assert tp2pp2.at(128).output_tokens_per_second / tp4.at(128).output_tokens_per_second == pytest.approx(1, abs=0.3)


def test_estimate_treats_a_neuron_device_like_a_gpu():
    # tensor_parallel counts Neuron devices (chips, two NeuronCores each), as GPUs: one device, BF16 weights
    # 16.06e9 B + KV 1,100 tokens x 131,072 B read at 820e9 x 0.55 B/s = 35.93 ms, plus the share of time the
    # 1,000-token prefills take (2 x 8.03e9 x 1,000 / (190e12 x 0.5) = 169 ms per request every ~7.4 s: 2.3 %)
    one = t.estimate(8.03, "Inferentia2", "bf16")
    assert 35.93 <= one.points[0].itl_ms <= 35.93 * 1.03
    assert "1 chip(s) x 1 stage(s)" in one.assumptions and "a Neuron device is taken as a GPU" in one.assumptions
    assert "Neuron" not in t.estimate(8.03, "H100", "bf16").assumptions
    four = t.estimate(8.03, "Inferentia2", "bf16", tensor_parallel=4)   # four devices: a quarter of the bytes each
    assert 35.93 / 4 <= four.points[0].itl_ms <= 35.93 / 4 * 1.03


def test_estimate_never_raises_when_the_weights_do_not_fit():
    est = t.estimate(406, "L4", "bf16")
    assert [p.concurrency for p in est.points] == [1]
    assert "THE WEIGHTS AND ONE REQUEST'S KV CACHE DO NOT FIT" in est.assumptions


def test_estimate_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"tensor_parallel \(0\), pipeline_parallel \(1\), input_tokens \(1000\) "
                                         r"and output_tokens \(200\) must be >= 1"):
        t.estimate(8, "H100", "bf16", tensor_parallel=0)
    with pytest.raises(ValueError, match=r"accelerator \('TPU'\) has no datasheet figures"):
        t.estimate(8, "TPU", "bf16")
