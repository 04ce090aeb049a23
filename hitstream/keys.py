"""Every Redis key hitstream touches, named here and nowhere else.

All of them derive from one prefix (HITSTREAM_REDIS_PREFIX, default `hitstream:`), so
two deployments on one Redis with different prefixes share nothing. Putting hash tags
on them for Redis Cluster is a change to this module only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RedisKeys:
    """The key names of one deployment, derived from its prefix."""

    prefix: str

    @property
    def stream(self) -> str:
        """The event stream ingest appends to and the consumer group reads."""
        return f"{self.prefix}events"

    @property
    def dead_letters(self) -> str:
        """The stream of entries that could not be written, with why."""
        return f"{self.prefix}events:dead"

    def plans(self, group: str) -> str:
        """A consumer group's in-flight insert plans (token -> entry IDs)."""
        return f"{self.prefix}plans:{group}"

    @property
    def dedup(self) -> str:
        """Prefix of the sets of remembered client event IDs: `<dedup><site>:<slice>`."""
        return f"{self.prefix}dedup:"

    @property
    def visits(self) -> str:
        """Prefix of each visitor's current visit: `<visits><site>:<visitor>` holds
        "<visit id> <last event ms>" (a salted visitor ID, never an address)."""
        return f"{self.prefix}visit:"

    @property
    def sites(self) -> str:
        """Hash of cached site records (site_id -> JSON)."""
        return f"{self.prefix}sites"

    @property
    def api_keys(self) -> str:
        """Hash of cached API key records (key_id -> JSON)."""
        return f"{self.prefix}keys"

    @property
    def domains(self) -> str:
        """Hash of the domains sites answer to (domain -> site_id; Plausible's `domain`)."""
        return f"{self.prefix}domains"

    @property
    def origins(self) -> str:
        """Set of the origins some public site allows (CORS preflight, keyless admission)."""
        return f"{self.prefix}origins"

    def session(self, digest: str) -> str:
        """A dashboard login: keyed by SHA-256 of the cookie's secret (never the secret),
        holding a fingerprint of the admin token it was opened with; expires by itself."""
        return f"{self.prefix}session:{digest}"

    def queue_sample(self, bucket: int) -> str:
        """The stream's counters at one sampling instant (epoch seconds, a multiple of
        the sampling interval), for the queue panel's insert and drain rates."""
        return f"{self.prefix}queue-sample:{bucket}"

    @property
    def registry_loaded(self) -> str:
        """Marker: the site and key cache holds a full copy of ClickHouse's registry."""
        return f"{self.prefix}registry:loaded"

    def rate_limit(self, bucket: str) -> str:
        """A token bucket (`ip:<address>`, `key:<key_id>`, `site:<site_id>`, one visitor
        address on a public site `site:<site_id>:ip:<address>`, an address's failed
        authentications `auth-failures:<address>`)."""
        return f"{self.prefix}ratelimit:{bucket}"

    @property
    def health_probe(self) -> str:
        """Written by /health to prove Redis takes writes (not only reads)."""
        return f"{self.prefix}health"

    def salt(self, day: str) -> str:
        """The visitor-hash salt of one UTC day (`YYYY-MM-DD`): 32 random bytes, made
        with SET NX by the first ingest process that needs it, expiring at the end of
        the next day (ingest/visitors.py)."""
        return f"{self.prefix}salt:{day}"
