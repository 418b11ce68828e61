"""Entry point the Pulumi CLI runs for `pulumi preview --policy-pack policies`: build the pack, nothing else.

Constructing ``PolicyPack`` starts the analyzer's gRPC server and blocks, so no other module may do it; the rules live
in importable modules (``policies.pack``). The pack directory may be published without the rest of the repository
(`pulumi policy publish`), and its directory name is then not ``policies``; the package is therefore loaded from
this file's directory under the name ``policies``, and the repository root (when present) is put on ``sys.path`` so
the accelerator catalogue and the vLLM fit check are found.
"""

import importlib.util
import sys
from pathlib import Path

from pulumi_policy import EnforcementLevel, PolicyPack

_HERE = Path(__file__).resolve().parent
if "policies" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("policies", _HERE / "__init__.py",
                                                   submodule_search_locations=[str(_HERE)])
    sys.modules["policies"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["policies"])
if (_HERE.parent / "components").is_dir():
    sys.path.append(str(_HERE.parent))

from policies.pack import ALL_POLICIES, PACK_DESCRIPTION, PACK_NAME  # noqa: E402

PolicyPack(
    name=PACK_NAME,
    policies=ALL_POLICIES,
    enforcement_level=EnforcementLevel.MANDATORY,
    description=PACK_DESCRIPTION,
    display_name="genai-scale",
    provider="aws",
    tags=["aws", "kubernetes", "genai", "gpu"],
)
