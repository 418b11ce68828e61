"""The cold-start catalogue: the cited phase figures, their scaling, and a source beside each phase."""

from __future__ import annotations

from components.catalog import coldstart as cs


def test_phases_are_the_cited_figures():
    assert cs.phase_seconds(8.03) == {"node": 240.0, "image": 300.0, "weights": round(61 + 47.99, 1),
                                      "compile": 200.0}
    assert cs.phase_seconds(8.03, provisioner="karpenter", soci=True, streamer=True, warm_compile=True) == {
        "node": 60.0, "image": 204.0, "weights": 14.3, "compile": 64.0}
    assert cs.phase_seconds(8.03, new_node=False, weights_on_disk=True, warm_compile=True) == {
        "node": 0.0, "image": 0.0, "weights": 48.0, "compile": 64.0}


def test_weights_scale_with_the_bytes_one_node_holds():
    assert cs.phase_seconds(405.9, nodes=2, streamer=True)["weights"] == round(14.34 * 405.9 / 2 / 8.03, 1)


def test_every_phase_names_its_source():
    doc = cs.__doc__ or ""
    for phase in ("**node**", "**image**", "**weights**", "**compile**"):
        section = doc.split(phase, 1)[1].split("- **", 1)[0]
        assert "https://" in section or "Seed" in section, phase
