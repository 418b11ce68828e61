"""API keys -> tenants. Only SHA-256 digests of keys are held; the raw key never leaves the request."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from serving.gateway.config import GatewayConfig, TenantLimits
from serving.gateway.errors import ConfigError, Problem


def hash_key(key: str) -> str:
    """The digest stored for an API key (hex SHA-256 of its UTF-8 bytes)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Tenant:
    name: str
    limits: TenantLimits


class TenantKeys:
    """Lookup of a bearer token's digest. Keys are 256-bit-entropy secrets, so a dict lookup on the digest is not a
    timing oracle for the key itself."""

    def __init__(self, digests: dict[str, str], limits: dict[str, TenantLimits], default: TenantLimits):
        self._by_digest = digests
        self._tenants = {t: Tenant(t, limits.get(t, default)) for t in set(digests.values())}

    def authenticate(self, authorization: str | None) -> Tenant | None:
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        tenant = self._by_digest.get(hash_key(token.strip()))
        return self._tenants.get(tenant) if tenant else None

    @property
    def tenants(self) -> list[str]:
        return sorted(self._tenants)


def _digest(d: str) -> str:
    return d.removeprefix("sha256:")


def load_keys(cfg: GatewayConfig, base_dir: str | Path = ".") -> TenantKeys:
    """Merge inline digests with the keys file (the mounted Kubernetes secret). Raises ConfigError."""
    pairs: dict[str, str] = {}
    problems: list[Problem] = []
    sources: list[tuple[str, dict]] = [("tenants.keys", cfg.tenants.keys)]
    if cfg.tenants.keys_file:
        path = Path(base_dir) / cfg.tenants.keys_file
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise ConfigError([Problem("tenants.keysFile", str(path), f"cannot read tenant keys ({exc})")])
        if not isinstance(data, dict):
            raise ConfigError([Problem("tenants.keysFile", str(path),
                                             "expected a mapping tenant -> list of SHA-256 digests")])
        sources.append((f"keysFile({path.name})", data))
    for label, mapping in sources:
        for tenant, digests in mapping.items():
            if not isinstance(digests, list):
                problems.append(Problem(f"{label}.{tenant}", type(digests).__name__, "expected a list"))
                continue
            for i, d in enumerate(digests):
                d = _digest(str(d))
                if len(d) != 64 or any(c not in "0123456789abcdef" for c in d):
                    problems.append(Problem(f"{label}.{tenant}[{i}]", d[:12] + "...",
                                                  "expected a SHA-256 hex digest"))
                elif d in pairs and pairs[d] != tenant:
                    problems.append(Problem(f"{label}.{tenant}[{i}]", d[:12] + "...",
                                                  f"the same key is also assigned to tenant {pairs[d]!r}"))
                else:
                    pairs[d] = str(tenant)
    if problems:
        raise ConfigError(problems)
    return TenantKeys(pairs, cfg.tenants.limits, cfg.tenants.default_limits)
