"""What every stack section shares: the settings base model and the build context passed between sections."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from components.errors import ArgsError

from problems import Problem


class SettingsModel(BaseModel):
    """Base of every stack-config model: camelCase keys in YAML, snake_case in Python, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True,
                              use_attribute_docstrings=True, validate_default=True)


@dataclass
class BuildContext:
    """Handed from section to section while the program builds the stack."""

    stack: str
    tier: str
    region: str
    tags: dict[str, str]
    targets: Any = None
    network: Any = None
    cluster: Any = None
    k8s_provider: pulumi.ProviderResource | None = None
    node_groups: dict[str, Any] = field(default_factory=dict)
    node_group_specs: dict[str, Any] = field(default_factory=dict)
    gpu_operator: Any = None
    neuron_plugin: Any = None
    cluster_autoscaler: Any = None
    alb: Any = None
    lb_controller: Any = None
    cache: Any = None
    bedrock: Any = None
    sagemaker: dict[str, Any] = field(default_factory=dict)
    vllm_services: dict[str, Any] = field(default_factory=dict)
    keda: Any = None
    monitoring: Any = None
    gateway: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
    exported: dict[str, Any] = field(default_factory=dict)

    def export(self, name: str, value: Any) -> None:
        """Export a stack output (and remember it for later sections)."""
        self.exported[name] = value
        pulumi.export(name, value)


_SNAKE = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")


def translate(err: ArgsError, prefix: str, renames: dict[str, str] | None = None) -> list[Problem]:
    """Component-args problems in config terms: camelCase key paths under ``prefix`` (args fields that have another
    name in config are renamed through ``renames``)."""
    renames = renames or {}

    def camel(text: str) -> str:
        return _SNAKE.sub(lambda m: to_camel(renames.get(m.group(0), m.group(0))), text)

    out = []
    for p in err.problems:
        head, _, rest = p.path.partition(".")
        head = renames.get(head, head)
        path = to_camel(head) + (f".{rest}" if rest else "")
        out.append(Problem(f"{prefix}.{camel(path)}" if p.path else prefix, p.value, camel(p.expected)))
    return out
