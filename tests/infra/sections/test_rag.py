"""The rag section in every tier: Aurora Serverless v2 with a 0 ACU minimum on prototype, readers on growth and scale,
the outputs with the sizing; config errors (a workload that cannot fit, a bad ACU range) by key path; the Qdrant
backend through stack config."""

from __future__ import annotations

import json

import pytest
import yaml

from infra.config import ROOT, ConfigError, build_settings, read_stack_file
from infra.plan import jsonable
from infra.program import plan_stack
from infra.sections import SECTIONS, batch, rag
from tests.stack_plans import planned

CLUSTER = "aws:rds/cluster:Cluster"
INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
EXPECTED = {  # stack -> (min ACU, max ACU, readers, deletion protection)
    "dev": (0, 4, 0, False), "staging": (0.5, 16, 1, True), "prod": (2, 64, 3, True)}


@pytest.mark.parametrize("stack", list(EXPECTED))
def test_every_tier_plans_the_aurora_vector_store(stack):
    result, cfg = planned(stack)
    low, high, readers, protected = EXPECTED[stack]
    c = result.one(CLUSTER).inputs
    scaling = c["serverlessv2ScalingConfiguration"]
    assert (scaling["minCapacity"], scaling["maxCapacity"]) == (low, high)
    assert ("secondsUntilAutoPause" in scaling) == (low == 0)
    assert c["storageEncrypted"] is True and c["iamDatabaseAuthenticationEnabled"] is True
    assert c["deletionProtection"] is protected and c["skipFinalSnapshot"] is (not protected)
    instances = result.by_type(INSTANCE)
    assert len(instances) == 1 + readers
    assert all(i.inputs["instanceClass"] == "db.serverless" for i in instances)
    assert c["tags"]["genai-scale/component"] == "vector-store"
    assert {"vectorStoreEndpoint", "vectorStoreReaderEndpoint", "vectorStoreSecretArn"} <= set(result.outputs)
    assert cfg.rag.enabled and cfg.rag.backend == "aurora-pgvector"


def test_the_plan_prints_the_sizing():
    result, _ = planned("dev")
    assert result.outputs["vectorStoreSizing"] == {"tableGib": 4.8, "indexGib": 4.09, "storageGib": 8.89,
                                                   "acuNeeded": 3.5, "instances": 1}
    assert result.outputs["vectorStoreCollectionSettings"] == {"index": "hnsw", "m": 16, "ef_construction": 64,
                                                               "ef_search": 40}


def test_rag_builds_last():
    assert SECTIONS[-1] is rag and SECTIONS.index(rag) > SECTIONS.index(batch)


def with_rag(rag_cfg: dict, stack: str = "dev") -> dict:
    raw = read_stack_file(ROOT / "stacks" / f"Pulumi.{stack}.yaml")
    raw["genai-scale:rag"] = rag_cfg
    return raw


def problems_of(raw: dict) -> str:
    with pytest.raises(ConfigError) as exc:
        build_settings(raw, source="stacks/Pulumi.dev.yaml")
    return str(exc.value)


def test_100m_1024_d_vectors_on_the_prototype_is_a_config_error_naming_the_limit():
    text = problems_of(with_rag({"workload": {"vectors": 100_000_000}}))
    assert ("genai-scale:rag.workload.vectors = 100000000: at most what one Aurora Serverless v2 instance holds in "
            "memory: 100,000,000 vectors of 1024 dimensions need a 409.04 GiB HNSW index, 301 ACU of shared buffers, "
            "over the 256 ACU limit by 45 ACU") in text


def test_a_max_acu_too_small_and_a_bad_range_are_named_in_config_terms():
    text = problems_of(with_rag({"workload": {"vectors": 2_000_000}}))
    assert "genai-scale:rag.aurora.maxAcu = 4.0: >= 6.5 to keep the HNSW index" in text
    text = problems_of(with_rag({"aurora": {"minAcu": 8}}))
    assert "genai-scale:rag.aurora.minAcu = 8.0: <= aurora.maxAcu (4)" in text


def test_an_unknown_key_is_refused():
    assert "genai-scale:rag.aurora.minAcus" in problems_of(with_rag({"aurora": {"minAcus": 0}}))


def test_a_disabled_store_builds_nothing(tmp_path):
    doc = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())
    doc["config"]["genai-scale:rag"] = {"enabled": False, "ingestion": {"enabled": False}}
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(doc))
    result, cfg = plan_stack(stack="dev", config_file=str(path))
    assert not cfg.rag.enabled
    assert result.by_type(CLUSTER) == [] and "vectorStoreEndpoint" not in result.outputs


def test_the_qdrant_backend_through_stack_config(tmp_path):
    doc = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())
    doc["config"]["genai-scale:rag"] = {"backend": "qdrant", "qdrant": {"replicas": 3, "replicationFactor": 2}}
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(doc))
    result, cfg = plan_stack(stack="dev", config_file=str(path))
    assert cfg.rag.ingestion.enabled  # the tier's ingestion, now on Qdrant
    release = next(r for r in result.by_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "qdrant")
    assert release.inputs["values"]["replicaCount"] == 3
    assert result.by_type(CLUSTER) == []
    assert result.outputs["vectorStoreEndpoint"] == "vector-store-qdrant.genai-rag.svc.cluster.local"
    settings = result.outputs["vectorStoreCollectionSettings"]
    assert (settings["shard_number"], settings["replication_factor"]) == (1, 2)
    # the embedding service shares genai-rag with Qdrant, which creates it: no second Namespace
    names = [r.inputs["metadata"]["name"] for r in result.by_type("kubernetes:core/v1:Namespace")]
    assert names.count("genai-rag") == 1 and "embeddings-deployment" in {r.name for r in result.resources}
    # the workers write to Qdrant: its Service's REST URL, the API key from VectorStore's Secret (never a literal)
    url = "http://vector-store-qdrant.genai-rag.svc.cluster.local:6333"
    env = {e["name"]: e for e in
           result.named("rag-ingest-deployment").inputs["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (env["RAG_STORE"]["value"], env["RAG_QDRANT_URL"]["value"]) == ("qdrant", url)
    assert env["RAG_QDRANT_API_KEY"] == {"name": "RAG_QDRANT_API_KEY", "valueFrom": {"secretKeyRef": {
        "name": "vector-store-api-key", "key": "api-key"}}}
    assert result.one("kubernetes:core/v1:Secret", "vector-store-api-key").inputs["metadata"]["namespace"] == "genai-rag"
    assert not {n for n in env if n.startswith("RAG_DB_")}
    worker = json.loads(result.named("rag-ingest-worker-policy").inputs["policy"])
    assert "ReadStoreSecret" not in {s["Sid"] for s in worker["Statement"]}
    # the gateway creates and queries collections there, with the key in its pods' env from its upstream-keys Secret
    gw = yaml.safe_load(result.named("gateway-config").inputs["data"]["gateway.yaml"])
    assert gw["rag"]["store"] == {"kind": "qdrant", "url": url, "apiKeyEnv": "RAG_QDRANT_API_KEY"}
    gw_env = {e["name"]: e for e in
              result.named("gateway-deployment").inputs["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert gw_env["RAG_QDRANT_API_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "gateway-upstream-keys",
                                                                          "key": "RAG_QDRANT_API_KEY"}}
    keys = jsonable(result.named("gateway-upstream-keys").inputs["stringData"], reveal_secrets=True)
    password = result.one("random:index/randomPassword:RandomPassword", "vector-store-api-key")
    assert keys["RAG_QDRANT_API_KEY"] == jsonable(password.outputs["result"], reveal_secrets=True)


def test_qdrant_ingestion_needs_the_workers_and_the_gateway_beside_qdrant():
    text = problems_of(with_rag({"backend": "qdrant", "qdrant": {"namespace": "vectors", "clientNamespaces": []}}))
    assert ("genai-scale:rag.qdrant.namespace = 'vectors': rag.embedding.namespace (genai-rag) with ingestion on the "
            "qdrant backend (the workers run there and read the Qdrant API key Secret of that namespace)") in text
    assert ("genai-scale:rag.qdrant.clientNamespaces = []: to include the gateway's namespace (genai-gateway): with "
            "ingestion on, the gateway creates and queries collections in Qdrant") in text


# --- the embedding service and the ingestion workers ---

TEI = {  # stack -> (image tag, node group selector, min, max, --max-batch-tokens, --max-concurrent-requests)
    "dev": ("cpu-1.9", "system", 0, 1, "4096", "512"),
    "staging": ("86-1.9", "a10g", 1, 3, "16384", "512"),
    "prod": ("86-1.9", "a10g", 2, 8, "16384", "2000")}  # 2 x targets.concurrentStreams (1000)


def _arg(argv, flag):
    return argv[argv.index(flag) + 1]


@pytest.mark.parametrize("stack", list(TEI))
def test_every_tier_has_the_embedding_service_with_its_keda_trigger(stack):
    result, cfg = planned(stack)
    tag, group, low, high, tokens, concurrent = TEI[stack]
    pod = result.named("embeddings-deployment").inputs["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["image"] == f"ghcr.io/huggingface/text-embeddings-inference:{tag}"
    assert pod["nodeSelector"]["genai-scale/node-group"] == group
    assert (_arg(c["args"], "--max-batch-tokens"), _arg(c["args"], "--max-concurrent-requests")) == (tokens,
                                                                                                  concurrent)
    so = result.named("embeddings-scaledobject").inputs["spec"]
    assert (so["minReplicaCount"], so["maxReplicaCount"]) == (low, high)
    names = [t["name"] for t in so["triggers"]]
    assert names[0] == "queue-depth" and "te_queue_size" in so["triggers"][0]["metadata"]["query"]
    assert ("gateway-demand" in names and "ingestion-queue" in names) == (low == 0)
    out = result.outputs["embeddingService"]
    assert out["url"] == "http://embeddings.genai-rag.svc:8080/v1" and out["model"] == "bge-base"


@pytest.mark.parametrize("stack", list(TEI))
def test_every_tier_has_the_ingestion_workers_and_the_gateway_config_blocks(stack):
    import json

    result, _ = planned(stack)
    q = result.named("rag-ingest-queue").inputs
    assert q["kmsMasterKeyId"] and json.loads(q["redrivePolicy"])["maxReceiveCount"] == 3
    env = {e["name"]: e.get("value") for e in
           result.named("rag-ingest-deployment").inputs["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["RAG_EMBED_URL"] == "http://embeddings.genai-rag.svc:8080/v1"
    assert env["RAG_DB_HOST"] == result.outputs["vectorStoreEndpoint"]
    assert env["RAG_DB_SECRET_ARN"] == result.outputs["vectorStoreSecretArn"]
    assert env["RAG_QUEUE_URL"] == result.outputs["ragIngestion"]["queueUrl"]
    so = result.named("rag-ingest-scaledobject").inputs["spec"]
    assert so["triggers"][0]["type"] == "aws-sqs-queue" and so["minReplicaCount"] == 0
    # KEDA's operator has one Pod Identity association (the batch section's); its role also reads this queue
    attach = result.named("rag-ingest-keda-scaler").inputs
    assert attach["role"] == result.named("batch-scaler-role").outputs["name"]
    gw = yaml.safe_load(result.named("gateway-config").inputs["data"]["gateway.yaml"])
    assert gw["embeddings"]["models"]["bge-base"] == {"kind": "openai", "model": "BAAI/bge-base-en-v1.5",
                                                      "baseUrl": "http://embeddings.genai-rag.svc:8080/v1"}
    rag_cfg = gw["rag"]
    assert rag_cfg["queueUrl"] == env["RAG_QUEUE_URL"] and rag_cfg["bucket"] == env["RAG_BUCKET"]
    assert rag_cfg["store"]["host"] == env["RAG_DB_HOST"] and rag_cfg["embeddingModel"] == "bge-base"
    assert "gateway-irsa-managed-rag-ingestion" in {r.name for r in result.resources}


def test_embedding_rules_are_named_in_config_terms():
    text = problems_of(with_rag({"embedding": {"nodeGroup": "inf2"}}))
    assert ("genai-scale:rag.embedding.nodeGroup = 'inf2': a node group with a GPU TEI has an image for (A100, A10G, "
            "H100, H200, L4, L40S, T4), or none for the CPU image; its accelerator is Inferentia2") in text
    text = problems_of(with_rag({"embedding": {"nodeGroup": "h200"}}))
    assert "genai-scale:rag.embedding.nodeGroup = 'h200': a node group of nodeGroups (" in text
    text = problems_of(with_rag({"embedding": {"maxBatchTokens": 128}}))
    assert ("genai-scale:rag.embedding.maxBatchTokens = 128: >= maxInputTokens (512): TEI truncates every longer "
            "input to the batch") in text


def test_ingestion_needs_the_store_and_the_embedding_service():
    text = problems_of(with_rag({"enabled": False, "embedding": {"enabled": False}}))
    assert ("genai-scale:rag.ingestion.enabled = True: needs rag.embedding.enabled (the workers embed through the "
            "embedding service)") in text
    assert ("genai-scale:rag.ingestion.enabled = True: needs rag.enabled (the workers upsert into the vector "
            "store)") in text
    text = problems_of(with_rag({"ingestion": {"minReplicas": 9}}))
    assert "genai-scale:rag.ingestion.minReplicas = 9: <= maxReplicas (2)" in text


def test_the_embedding_service_needs_keda_and_monitoring():
    raw = with_rag({})
    raw["genai-scale:monitoring"] = {"enabled": False}
    assert ("genai-scale:rag.embedding.enabled = True: needs serving.keda.enabled and monitoring.enabled (KEDA scales "
            "the service on a Prometheus metric)") in problems_of(raw)
