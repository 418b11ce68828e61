"""`genai-scale pools recommend`: the decision-matrix row of one workload or all, as text or JSON; bad names exit 2."""

import json

from components.serving.pools.strategy import WORKLOADS, recommend
from infra.cli import EXIT_CONFIG, main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_one_workload_prints_its_policy_and_reason(capsys):
    code, out, err = run_cli(capsys, "pools", "recommend", "--workload", "variable-traffic")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "variable-traffic: dynamic"
    assert " ".join(line.strip() for line in lines[1:]) == recommend("variable-traffic").reason


def test_without_a_workload_every_row_is_printed_in_the_matrix_order(capsys):
    code, out, _ = run_cli(capsys, "pools", "recommend")
    heads = [line for line in out.splitlines() if not line.startswith("  ")]
    assert code == 0 and heads == [f"{w}: {recommend(w).policy}" for w in WORKLOADS]


def test_json_gives_workload_policy_and_reason(capsys):
    code, out, _ = run_cli(capsys, "pools", "recommend", "--workload", "latency-critical", "--json")
    assert code == 0
    assert json.loads(out) == [{"workload": "latency-critical", "policy": "dedicated",
                                "reason": recommend("latency-critical").reason}]
    code, out, _ = run_cli(capsys, "pools", "recommend", "--json")
    assert [row["workload"] for row in json.loads(out)] == list(WORKLOADS)


def test_an_unknown_workload_exits_2_with_the_valid_names(capsys):
    code, out, err = run_cli(capsys, "pools", "recommend", "--workload", "variable-trafic")
    assert code == EXIT_CONFIG and out == ""
    assert err == ("genai-scale pools recommend: unknown workload 'variable-trafic' (did you mean "
                   f"\"variable-traffic\"?); expected one of: {', '.join(WORKLOADS)}\n")
    assert "Traceback" not in err


def test_a_missing_subcommand_exits_2(capsys):
    code, _, err = run_cli(capsys, "pools")
    assert code == EXIT_CONFIG and "recommend" in err
