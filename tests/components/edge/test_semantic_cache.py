"""SemanticCache: Valkey >= 8.2 node-based replication group, encryption, auth, network, snapshots, logs, limits."""

import json

import pulumi
import pytest

from components.edge import _cache
from components.edge.semantic_cache import SemanticCache, SemanticCacheArgs
from infra.plan import run_program
from tests.kit.plan import errors_of

RG = "aws:elasticache/replicationGroup:ReplicationGroup"
WIRING = {"vpc_id": "vpc-0abc", "subnet_ids": ["subnet-a", "subnet-b"], "node_security_group_id": "sg-nodes"}


def args(**kw):
    return SemanticCacheArgs(**{**WIRING, **kw})


def errors(**kw) -> str:
    return errors_of(args, **kw)


def plan(**kw):
    holder = {}

    def prog():
        cache = holder.setdefault("cache", SemanticCache("cache", args(**kw)))
        pulumi.export("token", cache.auth_token)
        pulumi.export("port", cache.port)
    result = run_program(prog, stack="prod")
    return result, holder["cache"]


def test_replication_group_is_valkey_82_encrypted_and_authenticated_by_token():
    result, cache = plan()
    rg = result.one(RG).inputs
    assert rg["engine"] == "valkey" and rg["engineVersion"] == "8.2"
    assert rg["clusterMode"] == "disabled"
    assert rg["transitEncryptionEnabled"] is True and rg["transitEncryptionMode"] == "required"
    assert rg["atRestEncryptionEnabled"] is True
    assert rg["kmsKeyId"] == result.one("aws:kms/key:Key").outputs["arn"]
    password = result.one("random:index/randomPassword:RandomPassword")
    assert password.inputs["length"] == 64 and password.inputs["overrideSpecial"] == "!&#$^<>-"
    assert "userGroupIds" not in rg
    assert cache.username == "default"
    assert result.outputs["token"] == password.outputs["result"]
    assert "token" in result.secret_outputs


def test_auth_token_is_never_a_literal_and_is_stored_in_a_kms_encrypted_secret():
    result, _ = plan()
    rg = result.one(RG)
    assert json.dumps(rg.inputs["authToken"]).count("4dabf18193072939515e22adb298388d") == 1  # Pulumi secret marker
    secret = result.one("aws:secretsmanager/secret:Secret")
    assert secret.inputs["kmsKeyId"] == result.one("aws:kms/key:Key").outputs["arn"]
    version = result.one("aws:secretsmanager/secretVersion:SecretVersion")
    assert version.inputs["secretId"] == secret.outputs["id"]
    doc = json.loads(version.inputs["secretString"]["value"])
    assert doc == {"host": rg.outputs["primaryEndpointAddress"], "reader_host": rg.outputs["readerEndpointAddress"],
                   "port": 6379, "username": "default",
                   "password": result.one("random:index/randomPassword:RandomPassword").outputs["result"], "tls": True}


def test_network_is_private_and_only_the_nodes_reach_6379():
    result, cache = plan()
    rg = result.one(RG).inputs
    subnets = result.one("aws:elasticache/subnetGroup:SubnetGroup")
    assert subnets.inputs["subnetIds"] == ["subnet-a", "subnet-b"]
    assert rg["subnetGroupName"] == subnets.outputs["name"]
    sg = result.one("aws:ec2/securityGroup:SecurityGroup")
    assert rg["securityGroupIds"] == [sg.outputs["id"]]
    rule = result.one("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule").inputs
    assert (rule["fromPort"], rule["toPort"], rule["referencedSecurityGroupId"]) == (6379, 6379, "sg-nodes")
    assert "cidrIpv4" not in rule
    assert result.by_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule") == []


def test_snapshots_maintenance_and_slow_log_delivery():
    result, _ = plan(snapshot_retention_days=7, final_snapshot=True)
    rg = result.one(RG).inputs
    assert rg["snapshotRetentionLimit"] == 7 and rg["snapshotWindow"] == "03:00-04:00"
    assert rg["maintenanceWindow"] == "sun:05:00-sun:06:00"
    assert rg["finalSnapshotIdentifier"] == "prod-cache-final"  # unique per stack (this plan runs as prod)
    log = result.one("aws:cloudwatch/logGroup:LogGroup")
    assert rg["logDeliveryConfigurations"] == [{"destination": log.outputs["name"], "destinationType": "cloudwatch-logs",
                                                "logFormat": "json", "logType": "slow-log"}]
    assert log.inputs["kmsKeyId"] == result.one("aws:kms/key:Key").outputs["arn"]


def test_key_policy_lets_cloudwatch_logs_use_the_key_for_this_account_only():
    doc = _cache.key_policy(partition="aws", region="us-east-1", account="123456789012")
    logs = doc["Statement"][1]
    assert logs["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] == \
        "arn:aws:logs:us-east-1:123456789012:log-group:*"


def test_replicas_failover_and_multi_az_in_the_larger_tiers():
    result, _ = plan(node_type="cache.r7g.large", replicas=2, automatic_failover=True, multi_az=True)
    rg = result.one(RG).inputs
    assert rg["numCacheClusters"] == 3
    assert rg["automaticFailoverEnabled"] is True and rg["multiAzEnabled"] is True
    assert rg["nodeType"] == "cache.r7g.large"


def test_parameter_group_family_eviction_and_reserved_memory():
    result, _ = plan(engine_version="9.0", maxmemory_policy="allkeys-lru", reserved_memory_percent=30)
    params = result.one("aws:elasticache/parameterGroup:ParameterGroup")
    assert params.inputs["family"] == "valkey9"
    assert {p["name"]: p["value"] for p in params.inputs["parameters"]} == {"maxmemory-policy": "allkeys-lru",
                                                                           "reserved-memory-percent": "30"}
    assert result.one(RG).inputs["parameterGroupName"] == params.outputs["name"]


def test_rbac_mode_disables_the_default_user_and_adds_one_app_user():
    result, cache = plan(auth="rbac")
    users = {r.inputs["userName"]: r for r in result.by_type("aws:elasticache/user:User")}
    assert users["default"].inputs["accessString"] == "off -@all"
    assert users["genai-scale-app"].inputs["authenticationMode"]["type"] == "password"
    group = result.one("aws:elasticache/userGroup:UserGroup")
    assert group.inputs["userIds"] == [users["default"].inputs["userId"], users["genai-scale-app"].inputs["userId"]]
    assert users["default"].inputs["userId"] == "prod-cache-default"
    rg = result.one(RG).inputs
    assert rg["userGroupIds"] == [group.inputs["userGroupId"]] and "authToken" not in rg
    assert cache.username == "genai-scale-app"


def test_outputs_and_limits_of_the_engine_version():
    result, cache = plan()
    assert cache.engine_version == "8.2"
    assert cache.limits == {"max_indexes": 10, "max_fields_per_index": 50, "max_vector_dimensions": 32768,
                            "max_search_timeout_ms": 60000}
    assert result.outputs["port"] == 6379
    assert SemanticCache.__annotations__.keys() >= {"primary_endpoint", "reader_endpoint", "auth_secret_arn"}


def test_rbac_ids_are_account_unique_and_valid():
    assert _cache.rbac_id("prod", "cache", "users") == "prod-cache-users"
    long = _cache.rbac_id("9-stack", "X" * 80, "default")
    assert len(long) <= 40 and long[0].isalpha() and long.endswith("-default")


# --- validation ------------------------------------------------------------------------------------------------

def test_serverless_is_refused_with_the_reason():
    assert "serverless = True: false: ElastiCache vector search runs on node-based Valkey 8.2+ clusters only" in \
        errors(serverless=True)


@pytest.mark.parametrize("version", ["7.2", "8.0", "8.1"])
def test_versions_before_82_are_refused(version):
    assert f"engine_version = '{version}': a Valkey version with vector search: 8.2, 9.0, 9.1" in \
        errors(engine_version=version)


def test_data_tiering_nodes_are_refused():
    assert "node_type = 'cache.r6gd.xlarge': a node type without data tiering" in errors(node_type="cache.r6gd.xlarge")
    assert "node_type = 'r7g.large': a node type such as cache.r7g.large" in errors(node_type="r7g.large")


def test_burstable_small_nodes_need_reserved_memory_for_search():
    assert "reserved_memory_percent = 25: >= 30 on cache.t4g.small" in errors(node_type="cache.t4g.small")
    assert "reserved_memory_percent = 40: >= 50 on cache.t4g.micro" in errors(node_type="cache.t4g.micro",
                                                                              reserved_memory_percent=40)
    assert args(node_type="cache.t4g.small", reserved_memory_percent=30).reserved_memory_percent == 30


def test_failover_needs_replicas_and_multi_az_needs_failover():
    msg = errors(automatic_failover=True, multi_az=True)
    assert "automatic_failover = True: false unless replicas >= 1" in msg
    assert args(replicas=1, automatic_failover=True, multi_az=True).multi_az
    assert "multi_az = True: false unless automatic_failover is true" in errors(replicas=1, multi_az=True)


def test_windows_are_checked():
    msg = errors(snapshot_window="3-4", maintenance_window="sunday 5am")
    assert "snapshot_window = '3-4': a UTC range hh24:mi-hh24:mi" in msg
    assert "maintenance_window = 'sunday 5am': a UTC range ddd:hh24:mi-ddd:hh24:mi" in msg


def test_ranges_are_checked():
    msg = errors(replicas=6, snapshot_retention_days=36)
    assert "replicas = 6: expected a number <= 5" in msg
    assert "snapshot_retention_days = 36: expected a number <= 35" in msg


def test_auth_mode_is_an_enum():
    assert "auth = 'password': expected one of 'token' or 'rbac'" in errors(auth="password")
