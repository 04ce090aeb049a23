"""A visit's acquisition channel (`visit:channel`), by Plausible's grouping: 19 rules,
the first that holds names the channel (Plausible's `Plausible.Ingestion.Acquisition`,
plausible/analytics lib/plausible/ingestion/acquisition.ex). The rules read the visit's
stored source, utm_medium, utm_source, utm_campaign and click-id parameter, compared in
lower case, so the channel is computed when a query runs and rows stored before this
module answer too. Written once, as data, and rendered here into the ClickHouse
expression the stats compiler reads (reporting/sources.py).

A source's category (Google Analytics 4's source categories: search, social, video,
email, shopping, plus Plausible's AI assistants) comes from hitstream's source table
(schemas/referrer_sources.toml, `category`) and from EXTRA_CATEGORIES below, a list
hitstream's authors wrote from Google's published description of those categories for
names and hosts the table does not classify so (Hacker News and GitHub as social, as
Plausible counts them; hosts that stay sources because the table has no name for them).
"""

from __future__ import annotations

from collections.abc import Mapping

from schemas.sources import SOURCES, SourceTable

# The table's categories that are GA4 source categories; the others (news, tech, other)
# group into no channel of their own.
CHANNEL_CATEGORIES = frozenset({"search", "social", "video", "email", "shopping", "ai"})

# hitstream's own list: lower-case source names and hosts, by category (where the table
# names a source, its category wins: a test checks that this list contradicts it nowhere).
EXTRA_CATEGORIES: Mapping[str, tuple[str, ...]] = {
    "search": (
        "so.com", "sm.cn", "360.cn", "search.aol.com", "ask.com", "presearch.com",
        "search.lycos.com", "dogpile.com", "webcrawler.com", "info.com", "rambler.ru",
        "coccoc.com", "onet.pl", "virgilio.it", "libero.it", "najdi.si", "search.seznam.cz",
        "lite.duckduckgo.com", "html.duckduckgo.com", "search.naver.com", "swisscows.com",
        "metager.org", "searx", "you search",
    ),
    "social": (
        "hacker news", "news.ycombinator.com", "github", "github.com", "gitlab",
        "stack overflow", "stackoverflow.com", "stackexchange.com", "dev.to", "medium",
        "medium.com", "product hunt", "producthunt", "producthunt.com", "lobsters",
        "indie hackers", "hashnode", "slashdot", "t.co", "twitter", "twitter.com", "x.com",
        "m.facebook.com", "l.facebook.com", "lm.facebook.com", "fb.me", "l.instagram.com",
        "lnkd.in", "steamcommunity.com", "statics.teams.cdn.office.net", "teams.microsoft.com",
        "nextdoor.com", "flickr.com", "meetup.com", "ok.ru", "vk.com", "douban.com",
        "ameblo.jp", "blogger.com", "wordpress.com", "disqus.com", "deviantart.com",
        "goodreads.com", "tiktok.com", "snapchat.com", "messenger.com", "wechat",
        "weixin.qq.com", "line.me", "viber.com", "signal", "kakaotalk", "mix.com",
        "digg.com", "fark.com", "habr.com", "qiita.com", "zhihu.com",
    ),
    "video": (
        "youtu.be", "m.youtube.com", "netflix.com", "hulu.com", "ted.com", "rumble.com",
        "nicovideo.jp", "iqiyi.com", "youku.com", "wistia.com", "disneyplus.com",
        "primevideo.com", "vimeo.com", "twitch.tv", "odysee.com", "peertube",
    ),
    "email": (
        "mail.google.com", "outlook.live.com", "outlook.office.com", "mail.yahoo.com",
        "mail.proton.me", "mail.aol.com", "mail.yandex.ru", "mail.ru", "gmx.net", "web.de",
        "mail.zoho.com", "fastmail.com", "app.fastmail.com", "hey.com", "icloud.com",
        "mailchimp", "mailchi.mp", "substack email",
    ),
    "shopping": (
        "walmart.com", "target.com", "bestbuy.com", "ikea.com", "zalando", "rakuten",
        "mercadolibre", "temu.com", "shein.com", "wish.com", "alibaba.com", "taobao.com",
        "jd.com", "flipkart.com", "allegro.pl", "otto.de", "shopping.google.com",
        "google shopping", "igshopping", "etsy.com", "ebay.com",
    ),
    "ai": (
        "chatgpt", "chatgpt.com", "chat.openai.com", "openai", "perplexity.ai", "claude.ai",
        "gemini.google.com", "copilot", "copilot.microsoft.com", "grok", "grok.com",
        "deepseek", "chat.deepseek.com", "phind.com", "you.com", "poe.com", "chat.mistral.ai",
        "le chat", "meta.ai", "kimi.com", "chat.qwen.ai",
    ),
}  # fmt: skip

# Plausible's lists (acquisition.ex and, for paid utm_sources, its source table's names
# ending in "ad"/"ads" plus `adwords`).
PAID_MEDIUM = r"^(.*cp.*|ppc|retargeting|paid.*)$"
SHOPPING_CAMPAIGN = r"^(.*(([^a-df-z]|^)shop|shopping).*)$"
PAID_SOURCES = (
    "fb-ads", "fbads", "fbad", "facebook-ads", "facebook_ads", "facebook_ad",
    "facebook_feed_ad", "yt-ads", "reddit-ads", "google_ads", "google-ads", "googleads",
    "gads", "google ads", "twitter-ads", "tiktokads", "adwords",
)  # fmt: skip
DISPLAY_MEDIUMS = ("display", "banner", "expandable", "interstitial", "cpm")
SOCIAL_MEDIUMS = (
    "social", "social-network", "social-media", "sm", "social network", "social media",
)  # fmt: skip
EMAIL_TAGS = ("email", "e-mail", "e_mail", "e mail", "newsletter")
REFERRAL_MEDIUMS = ("referral", "app", "link")
# The landing URL's query parameters that mark an ad click, the first present kept
# (ingest stores the parameter's name, never its value: schemas/urls.py).
CLICK_ID_PARAMS = ("gclid", "msclkid")

# The channels, in the order their rules are tried.
CHANNELS = (
    "Cross-network", "Paid Shopping", "Paid Search", "Paid Social", "Paid Video", "Display",
    "Paid Other", "Organic Shopping", "Organic Social", "Organic Video", "AI Assistants",
    "Organic Search", "Email", "Affiliates", "Audio", "SMS", "Mobile Push Notifications",
    "Referral", "Direct",
)  # fmt: skip


def categories(table: SourceTable = SOURCES) -> dict[str, str]:
    """Every lower-case source name, alias and host with a channel category: the table's,
    then EXTRA_CATEGORIES where the table has none."""
    out: dict[str, str] = {}
    for key, source in [*table.campaign_names.items(), *table.domains.items()]:
        if source.category in CHANNEL_CATEGORIES:
            out[key] = source.category
            out[source.name.lower()] = source.category
    for category, keys in EXTRA_CATEGORIES.items():
        for key in keys:
            out.setdefault(key, category)
    return out


def _text(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _array(values: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(_text(v) for v in values) + "]"


def _one_of(expr: str, values: tuple[str, ...] | list[str]) -> str:
    """Whether `expr` is one of `values`: IN a constant set, which the engine answers once
    per distinct value of a LowCardinality column (has() over an array compared each row:
    the channel breakdown of 1.4M visits took 758 ms with it, IN left a fraction)."""
    return f"{expr} IN ({', '.join(_text(v) for v in values)})"


def channel_sql(
    source: str, utm_medium: str, utm_source: str, utm_campaign: str, click_id: str
) -> str:
    """ClickHouse's expression of a visit's channel over its columns (or expressions)."""
    by_category: dict[str, list[str]] = {c: [] for c in CHANNEL_CATEGORIES}
    for key, name in sorted(categories().items()):
        by_category[name].append(key)
    s, m, us, c = (f"lowerUTF8({x})" for x in (source, utm_medium, utm_source, utm_campaign))

    def category(name: str) -> str:
        return _one_of(s, by_category[name])

    paid_medium = f"match({m}, {_text(PAID_MEDIUM)})"
    paid_source = _one_of(us, PAID_SOURCES)
    shopping = f"({category('shopping')} OR match({c}, {_text(SHOPPING_CAMPAIGN)}))"

    def paid(name: str) -> str:
        return f"{category(name)} AND ({paid_medium} OR {paid_source})"

    rules = [
        f"position({c}, 'cross-network') > 0",
        f"{shopping} AND {paid_medium}",
        f"({paid('search')}) OR ({s} = 'google' AND {click_id} = 'gclid')"
        f" OR ({s} = 'bing' AND {click_id} = 'msclkid')",
        paid("social"),
        paid("video"),
        _one_of(m, DISPLAY_MEDIUMS),
        paid_medium,
        shopping,
        f"{category('social')} OR {_one_of(m, SOCIAL_MEDIUMS)}",
        f"{category('video')} OR position({m}, 'video') > 0",
        category("ai"),
        category("search"),
        f"{category('email')} OR multiSearchAny({us}, {_array(EMAIL_TAGS)})"
        f" OR multiSearchAny({m}, {_array(EMAIL_TAGS)})",
        f"{m} = 'affiliate'",
        f"{m} = 'audio'",
        f"{us} = 'sms' OR {m} = 'sms'",
        f"endsWith({m}, 'push') OR multiSearchAny({m}, ['mobile', 'notification'])"
        f" OR {s} = 'firebase'",
        f"{_one_of(m, REFERRAL_MEDIUMS)} OR {s} != ''",
    ]
    pairs = zip(rules, CHANNELS[:-1], strict=True)  # Direct: none holds
    branches = ", ".join(f"{rule}, {_text(name)}" for rule, name in pairs)
    return f"multiIf({branches}, {_text(CHANNELS[-1])})"


# The expression over `sessions`' columns (migration 0020 adds click_id_param).
CHANNEL_SQL = channel_sql("source", "utm_medium", "utm_source", "utm_campaign", "click_id_param")
