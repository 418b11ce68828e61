"""Stack settings are derived from component args: one default, one bound, one docstring per setting."""

from __future__ import annotations

import typing

import pytest
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from infra.sections import SECTIONS
from infra.sections.base import SettingsModel, args_from, derive_settings, is_wiring, optional, pick


def _models():
    seen: dict[str, type[BaseModel]] = {}

    def walk(tp):
        if isinstance(tp, type) and issubclass(tp, SettingsModel):
            if tp.__name__ in seen:
                return
            seen[tp.__name__] = tp
            for f in tp.model_fields.values():
                walk(f.annotation)
        for a in typing.get_args(tp):
            walk(a)

    for section in SECTIONS:
        for model in section.KEYS.values():
            walk(model)
    return list(seen.values())


def _default(f):
    if f.default is not PydanticUndefined:
        return f.default
    if f.default_factory is not None:
        return f.default_factory()
    return PydanticUndefined


def _plain(v):
    if isinstance(v, BaseModel):
        return v.model_dump()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


DERIVED = [m for m in _models() if getattr(m, "__derived_from__", None) is not None]


def test_the_component_settings_are_derived():
    names = {m.__name__ for m in DERIVED}
    for expected in ("NetworkSettings", "ClusterSettings", "NodeGroupSettings", "GpuOperatorSettings",
                     "NeuronSettings", "ClusterAutoscalerSettings", "AlbSettings", "LbControllerSettings",
                     "CacheSettings", "BedrockSettings", "SageMakerEndpointSettings", "KedaSettings",
                     "MonitoringSettings", "ModelServiceSettings", "ModelAutoscalingSettings"):
        assert expected in names


@pytest.mark.parametrize("model", DERIVED, ids=lambda m: m.__name__)
def test_a_default_lives_in_one_place(model):
    """Every setting that is also an args field has the args' default, bounds and docstring."""
    args = model.__derived_from__
    differs = []
    for name, f in model.model_fields.items():
        a = args.model_fields.get(name)
        if a is None or (a.default is PydanticUndefined and a.default_factory is None):
            continue  # a section-only setting, or a required arg made optional for a switched-off section
        if _plain(_default(f)) != _plain(_default(a)) or f.metadata != a.metadata or f.description != a.description:
            differs.append(name)
    assert differs == []


@pytest.mark.parametrize("model", DERIVED, ids=lambda m: m.__name__)
def test_wiring_is_never_stack_config(model):
    args = model.__derived_from__
    exposed = [n for n in model.model_fields if n in args.model_fields and is_wiring(args.model_fields[n])]
    assert exposed == []
    assert "tags" not in model.model_fields or model is not args


def test_keys_are_camel_case_also_in_nested_models():
    from infra.sections.foundation import NodeGroupSettings

    s = NodeGroupSettings.model_validate({"instanceType": "x.large", "maxUnavailablePercentage": 50,
                                          "accelerator": {"vendor": "nvidia", "accelerator": "L40S", "count": 4,
                                                          "memoryGib": 48}})
    assert s.accelerator.memory_gib == 48 and s.max_unavailable_percentage == 50


def test_a_new_args_field_reaches_the_config_without_touching_infra():
    from components import GpuNodeGroupArgs

    class WithNewKnob(GpuNodeGroupArgs):
        new_knob_seconds: int = 7
        """A knob added to the component."""

    model = derive_settings(WithNewKnob, name="Probe", exclude=("tags",))
    assert model.model_validate({"instanceType": "g5.xlarge", "newKnobSeconds": 9}).new_knob_seconds == 9
    assert model.model_fields["new_knob_seconds"].description == "A knob added to the component."


def test_args_from_round_trips_and_takes_wiring():
    from components import GpuNodeGroupArgs
    from infra.sections.foundation import NodeGroupSettings

    s = NodeGroupSettings.model_validate({"instanceType": "g5.xlarge", "minSize": 1, "maxSize": 3,
                                          "extraLabels": {"team": "a"}})
    a = args_from(s, GpuNodeGroupArgs, cluster_name="c", node_role_arn="r", subnet_ids=["s"])
    assert (a.instance_type, a.min_size, a.max_size, a.extra_labels) == ("g5.xlarge", 1, 3, {"team": "a"})


def test_section_only_settings_are_not_passed_to_the_args():
    from components import GpuOperatorArgs
    from infra.sections.foundation import GpuOperatorSettings

    s = GpuOperatorSettings.model_validate({"enabled": False, "migStrategy": "single"})
    assert args_from(s, GpuOperatorArgs).mig_strategy == "single"


def test_pick_and_optional_copy_fields_from_args():
    from components import AlbArgs, VllmServiceArgs

    (tp, info), = pick(VllmServiceArgs, "warm_pool_placeholders").values()
    assert info.default == VllmServiceArgs.model_fields["warm_pool_placeholders"].default
    (tp, info), = optional(AlbArgs, "certificate_arn").values()
    assert info.default is None and type(None) in typing.get_args(tp)


def test_no_problem_is_filtered_by_its_message_text():
    """Problem filtering works on structured paths (Problem.concerns), never on the text of ``expected``."""
    import ast

    from tests.kit import ROOT

    offenders = []
    for folder in ("infra", "components", "problems", "serving", "policies"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
                    operands = [node.left, *node.comparators]
                    if any(isinstance(o, ast.Attribute) and o.attr == "expected" for o in operands):
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
