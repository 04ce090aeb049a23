"""Every Redis key hitstream touches, named here and nowhere else, and the shard layout.

All of them derive from one prefix (HITSTREAM_REDIS_PREFIX, default `hitstream:`), so
two deployments on one Redis with different prefixes share nothing. Every key carries
a Redis Cluster hash tag made here (users never type braces), so each script and each
transaction touches one slot:
- shard `k` of the event stream, `{<prefix>s<k>.<n>}` (`n` spreads the shards' slots:
  `_shard_tag`): its stream, dead letters, insert plans, and the dedup sets, visit state
  and visitor numbers of the sites it carries;
- everything else (sites, keys, domains, origins, sessions, rate limits, salts, queue
  samples), `{<prefix>c}`.
A site's events always go to the same shard (`shard_of`), so its dedup, visits and
order stay in one place. On a single server the tags change nothing but the names.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

from redis.crc import key_slot

# Sites whose shard is remembered per process (a hash each: cheap, but on the hot path).
SHARD_CACHE = 65_536
# Redis Cluster's hash slots.
SLOTS = 16_384
# Shard tags are spread over the slots in windows at least this fine (see _shard_tag).
MIN_WINDOWS = 16


def _tag(prefix: str, name: str) -> str:
    return "{" + prefix + name + "}"


@lru_cache(maxsize=4096)
def _shard_tag(prefix: str, index: int) -> str:
    """Shard `index`'s hash tag, `{<prefix>s<index>.<n>}`, with the first `n` that puts
    its slot in the shard's own window: windows of 1/16 of the slots or finer, at the
    points of a van der Corput sequence (0, 1/2, 1/4, 3/4, 1/8 ...). So the first 16
    shards take one window each, any first 2^j shards spread evenly, and the masters of
    a cluster whose slots are split in even ranges carry even shares (plain `s<k>` tags
    put 8 of 16 shards on one master of three)."""
    windows = max(MIN_WINDOWS, 1 << index.bit_length())
    point = int(f"{index:b}"[::-1], 2) / (1 << index.bit_length()) if index else 0.0
    start = int(point * SLOTS)
    for n in range(64 * windows):
        tag = f"{prefix}s{index}.{n}"
        if start <= key_slot(tag.encode()) < start + SLOTS // windows:
            return _tag(prefix, f"s{index}.{n}")
    return _tag(prefix, f"s{index}")  # not reached for any prefix tried; still a valid tag


@lru_cache(maxsize=SHARD_CACHE)
def shard_of(site_id: str, shards: int) -> int:
    """The shard that carries `site_id`'s events: a jump consistent hash (Lamping and
    Veach) of a stable 64-bit hash of the id, so growing from n to n+1 shards moves
    only 1/(n+1) of the sites, and every process and version agrees."""
    if shards <= 1:
        return 0
    key = int.from_bytes(hashlib.blake2b(site_id.encode(), digest_size=8).digest(), "little")
    bucket, jump = -1, 0
    while jump < shards:
        bucket = jump
        key = (key * 2862933555777941757 + 1) & 0xFFFFFFFFFFFFFFFF
        jump = int((bucket + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return bucket


@dataclass(frozen=True)
class ShardKeys:
    """The keys of one shard of the event stream, all under the shard's hash tag; index
    None is the one untagged stream of releases before shards (a legacy deployment's:
    its keys keep their old names, so consumers drain what it left)."""

    prefix: str
    index: int | None

    @property
    def tag(self) -> str:
        return self.prefix if self.index is None else _shard_tag(self.prefix, self.index)

    @property
    def name(self) -> str:
        """How logs, the queue panel and metrics call the shard."""
        return "legacy" if self.index is None else str(self.index)

    @property
    def stream(self) -> str:
        """The event stream ingest appends this shard's sites to and consumers read."""
        return f"{self.tag}events"

    @property
    def dead_letters(self) -> str:
        """The stream of this shard's entries that could not be written, with why."""
        return f"{self.tag}events:dead"

    def plans(self, group: str) -> str:
        """A consumer group's in-flight insert plans of this shard (token -> entry IDs)."""
        return f"{self.tag}plans:{group}"

    @property
    def dedup(self) -> str:
        """Prefix of the sets of remembered client event IDs: `<dedup><site>:<slice>`."""
        return f"{self.tag}dedup:"

    @property
    def calls(self) -> str:
        """Prefix of the marks of ingest's append calls, `<calls><random>`: a call sent
        again (its connection broke) finds its mark and appends nothing twice."""
        return f"{self.tag}call:"

    @property
    def visits(self) -> str:
        """Prefix of each visitor's current visit: `<visits><site>:<visitor>` holds
        "<visit id> <last event ms>" (a salted visitor ID, never an address)."""
        return f"{self.tag}visit:"

    @property
    def numbers(self) -> str:
        """Prefix of each site's visitor numbers of a salt day, `<numbers><site>:<day>`:
        a hash of salted visitor ID -> rank, and the day's count under '#'."""
        return f"{self.tag}vno:"


@dataclass(frozen=True)
class RedisKeys:
    """The key names of one deployment, derived from its prefix and its shard count."""

    prefix: str
    shards: int = 1

    def shard(self, index: int) -> ShardKeys:
        """The keys of shard `index` (it may be past `shards`: a retired shard)."""
        return ShardKeys(self.prefix, index)

    def shard_for(self, site_id: str) -> ShardKeys:
        """The keys of the shard that carries this site's events."""
        return self.shard(shard_of(site_id, self.shards))

    @property
    def all_shards(self) -> list[ShardKeys]:
        return [self.shard(k) for k in range(self.shards)]

    @property
    def legacy(self) -> ShardKeys:
        """The one stream of releases before shards (untagged), with its dead letters
        and plans: consumers drain what an upgraded single-server deployment left."""
        return ShardKeys(self.prefix, None)

    @property
    def _control(self) -> str:
        return _tag(self.prefix, "c")

    # Control keys of releases before shards that outlive a restart, and what they are
    # now: `<prefix><kind>:<rest>` became `{<prefix>c}<kind>:<rest>`.
    LEGACY_KINDS = ("salt", "session")

    def legacy_pattern(self, kind: str) -> str:
        """A SCAN pattern of a legacy control key kind (the prefix has no glob signs)."""
        return f"{self.prefix}{kind}:*"

    def from_legacy(self, name: str) -> str:
        """The name a legacy control key has now."""
        return self._control + name.removeprefix(self.prefix)

    @property
    def shard_counts(self) -> str:
        """Set of every shard count a process of this deployment ran with: consumers
        read each shard any of them wrote to, so a changed count leaves none unread."""
        return f"{self._control}shard-counts"

    @property
    def sites(self) -> str:
        """Hash of cached site records (site_id -> JSON)."""
        return f"{self._control}sites"

    @property
    def api_keys(self) -> str:
        """Hash of cached API key records (key_id -> JSON)."""
        return f"{self._control}keys"

    @property
    def domains(self) -> str:
        """Hash of the domains sites answer to (domain -> site_id; Plausible's `domain`)."""
        return f"{self._control}domains"

    @property
    def websites(self) -> str:
        """Hash of the sites' website_ids (UUID -> site_id; Umami's `website`)."""
        return f"{self._control}websites"

    def goals(self, site_id: str) -> str:
        """Hash of one site's live goals (goal_id -> JSON), read by reporting."""
        return f"{self._control}goals:{site_id}"

    def goals_lock(self, site_id: str) -> str:
        """Lock held while a goal of the site is checked and written (redis-py's Lock)."""
        return f"{self._control}goals-lock:{site_id}"

    @property
    def origins(self) -> str:
        """Set of the origins some public site allows (CORS preflight, keyless admission)."""
        return f"{self._control}origins"

    def session(self, digest: str) -> str:
        """A dashboard login: keyed by SHA-256 of the cookie's secret (never the secret),
        holding a fingerprint of the admin token it was opened with; expires by itself."""
        return f"{self._control}session:{digest}"

    def queue_sample(self, bucket: int) -> str:
        """The stream's counters at one sampling instant (epoch seconds, a multiple of
        the sampling interval), for the queue panel's insert and drain rates."""
        return f"{self._control}queue-sample:{bucket}"

    @property
    def registry_loaded(self) -> str:
        """Marker: the site and key cache holds a full copy of ClickHouse's registry,
        with every index this release reads (`:3`: the goals too, so a cache loaded by an
        older release is loaded again, which builds what it lacks)."""
        return f"{self._control}registry:loaded:3"

    def rate_limit(self, bucket: str) -> str:
        """A token bucket (`ip:<address>`, `key:<key_id>`, `site:<site_id>`, one visitor
        address on a public site `site:<site_id>:ip:<address>`, an address's failed
        authentications `auth-failures:<address>`)."""
        return f"{self._control}ratelimit:{bucket}"

    @property
    def health_probe(self) -> str:
        """Written by /health to prove Redis takes writes (not only reads)."""
        return f"{self._control}health"

    def salt(self, day: str) -> str:
        """The visitor-hash salt of one UTC day (`YYYY-MM-DD`): 32 random bytes, made
        with SET NX by the first ingest process that needs it, expiring at the end of
        the next day (ingest/visitors.py)."""
        return f"{self._control}salt:{day}"
