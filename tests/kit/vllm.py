"""Shared fixtures: vLLM's own serve parser (imported once per session: it takes seconds), node-group placements."""

from __future__ import annotations

import argparse
import contextlib
import io
import os

import pytest

from components.foundation.gpu_node_group import node_labels, node_taints
from components.catalog.accelerators import lookup
from components.serving.vllm.args import NodeGroupPlacement


class VllmParser:
    """`vllm serve`'s argument parser at the installed (pinned) vLLM version."""

    def __init__(self) -> None:
        os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
        try:
            from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
            from vllm.utils.argparse_utils import FlexibleArgumentParser
        except ImportError as exc:  # pragma: no cover - environment problem, reported clearly
            raise RuntimeError("vLLM's parser is not installed: run `make setup` (scripts/setup.d/30-vllm.sh)") from exc
        import vllm
        self.version = vllm.__version__
        self._make = lambda: make_arg_parser(FlexibleArgumentParser(prog="vllm serve"))
        self._validate = validate_parsed_serve_args
        self.parser = self._make()

    def parse(self, argv: list[str]) -> argparse.Namespace:
        """Parse and validate like `vllm serve` does; raise ValueError with vLLM's message on failure."""
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                ns = self.parser.parse_args(list(argv))
        except SystemExit:
            raise ValueError(err.getvalue().strip().splitlines()[-1]) from None
        self._validate(ns)
        return ns


@pytest.fixture(scope="session")
def vllm_parser() -> VllmParser:
    return VllmParser()


def placement(name: str, instance_type: str, **kw) -> NodeGroupPlacement:
    spec = lookup(instance_type)
    assert spec is not None, instance_type
    return NodeGroupPlacement(name=name, accelerator=spec, labels=node_labels(name, spec,
                              mig_config=kw.get("mig_config")), taints=node_taints(spec), **kw)
