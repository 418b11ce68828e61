"""The gateway's RAG reads go to the VectorStore's reader endpoint in every shipped stack (issue 16): the gateway
config's ``rag.store.readerHost`` is the Aurora cluster's reader endpoint (``vectorStoreReaderEndpoint``), while
``host`` (writes) stays the writer endpoint."""

from __future__ import annotations

import pytest
import yaml

from tests.stack_plans import planned


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_gateways_rag_reads_go_to_the_vector_stores_reader_endpoint(stack):
    result, _ = planned(stack)
    store = yaml.safe_load(result.named("gateway-config").inputs["data"]["gateway.yaml"])["rag"]["store"]
    assert store["kind"] == "pgvector"
    assert store["readerHost"] == result.outputs["vectorStoreReaderEndpoint"]
    assert store["host"] == result.outputs["vectorStoreEndpoint"] != store["readerHost"]
