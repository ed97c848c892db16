"""Per-tenant API keys: the shared implementation lives in :mod:`framewatch.apikeys`."""

from framewatch.apikeys import KEY_PREFIX, bearer, create, digest, list_keys, revoke, tenant_of

__all__ = ["KEY_PREFIX", "bearer", "create", "digest", "list_keys", "revoke", "tenant_of"]
