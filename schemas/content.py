"""Content: one stored vocabulary, each surface's words, the generation briefs and the API bodies.

Stored (canonical), then ``/api`` words: content type ``blog`` (``blog_post``), ``social`` (``social_media``),
``email`` (``email_newsletter``), ``product`` (``product_description``); status ``generating`` (``pending``
on ``/api``), ``draft``, ``approved``, ``scheduled``, ``publishing``, ``published``, ``unknown_outcome``
(a publish whose result nobody knows: a person checks and confirms or retries), ``failed``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

from schemas.ids import EndpointsId


class ContentType(StrEnum):
    blog = "blog"
    social = "social"
    email = "email"
    product = "product"


ENDPOINTS_TYPE_WORDS = {
    ContentType.blog: "blog_post",
    ContentType.social: "social_media",
    ContentType.email: "email_newsletter",
    ContentType.product: "product_description",
}
_TYPE_ALIASES = {word: kind for kind, word in ENDPOINTS_TYPE_WORDS.items()} | {"newsletter": ContentType.email}


def _canonical_type(value: object) -> object:
    return _TYPE_ALIASES.get(value, value) if isinstance(value, str) else value


ContentTypeIn = Annotated[
    ContentType,
    BeforeValidator(_canonical_type),
    WithJsonSchema({"type": "string", "enum": [t.value for t in ContentType] + list(ENDPOINTS_TYPE_WORDS.values())}),
]
EndpointsContentType = Annotated[
    ContentType,
    PlainSerializer(lambda kind: ENDPOINTS_TYPE_WORDS[kind], return_type=str),
    WithJsonSchema({"type": "string", "enum": list(ENDPOINTS_TYPE_WORDS.values())}),
]


class ContentStatus(StrEnum):
    generating = "generating"
    draft = "draft"
    approved = "approved"
    scheduled = "scheduled"
    publishing = "publishing"
    published = "published"
    unknown_outcome = "unknown_outcome"
    failed = "failed"


EndpointsContentStatus = Annotated[
    ContentStatus,
    PlainSerializer(lambda status: "pending" if status == ContentStatus.generating else status.value, return_type=str),
    WithJsonSchema({"type": "string", "enum": ["pending", *(s.value for s in ContentStatus if s != "generating")]}),
]
EDITABLE = frozenset({ContentStatus.draft, ContentStatus.approved, ContentStatus.failed})
"""A person may change the text in these states; once scheduled or out, it is what was approved."""


class SocialNetwork(StrEnum):
    twitter = "twitter"
    linkedin = "linkedin"
    facebook = "facebook"
    instagram = "instagram"


POST_LIMITS = {
    SocialNetwork.twitter: 280,
    SocialNetwork.linkedin: 3000,
    SocialNetwork.facebook: 63206,
    SocialNetwork.instagram: 2200,
}
"""Characters a post may have on each network, hashtags included."""


def _network(value: object) -> object:
    if isinstance(value, str):
        word = value.strip().lower()
        return SocialNetwork.twitter if word in ("x", "twitter", "x.com") else word
    return value


NetworkIn = Annotated[
    SocialNetwork,
    BeforeValidator(_network),
    WithJsonSchema({"type": "string", "enum": ["x", *(n.value for n in SocialNetwork)]}),
]


class Tone(StrEnum):
    professional = "professional"
    friendly = "friendly"
    casual = "casual"
    persuasive = "persuasive"
    informative = "informative"


class Length(StrEnum):
    short = "short"
    medium = "medium"
    long = "long"


WORDS_FOR_LENGTH = {Length.short: 300, Length.medium: 750, Length.long: 1500}
WORDS_PER_MINUTE = 200


def _comma_list(value: object) -> object:
    """``"a, b, c"`` (the ``/api`` documents' form) or ``["a", "b"]``: the same list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _hashtags(value: object) -> object:
    """``"#software #business"``, ``"software, business"`` or a list: ``["#software", "#business"]``."""
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if isinstance(value, list):
        return [f"#{str(tag).strip().lstrip('#')}" for tag in value if str(tag).strip().lstrip("#")]
    return value


Phrase = Annotated[str, Field(min_length=1, max_length=200)]
Words = Annotated[list[Phrase], BeforeValidator(_comma_list), Field(max_length=30)]
Hashtags = Annotated[list[Annotated[str, Field(max_length=100)]], BeforeValidator(_hashtags), Field(max_length=30)]
Topic = Annotated[str, Field(min_length=1, max_length=300)]
LongText = Annotated[str, Field(max_length=2000)]


class ContentBrief(BaseModel):
    """Everything generation needs, whichever endpoint asked; stored on the content as ``parameters``."""

    model_config = ConfigDict(extra="forbid")

    type: ContentType
    topic: str
    title: str | None = None
    keywords: list[str] = Field(default_factory=list)
    tone: Tone = Tone.professional
    word_count: int | None = None
    call_to_action: str | None = None
    network: SocialNetwork | None = None
    hashtags: list[str] = Field(default_factory=list)
    sections: list[str] = Field(default_factory=list)
    newsletter_type: str | None = None
    primary_goal: str | None = None
    product: dict[str, str] = Field(default_factory=dict)
    """Product description facts: name, category, features, benefits, specifications, price, usp."""
    channel: str | None = None
    """Where a product description will be shown (website, marketplace...)."""


# ---- generation bodies


class ContentGenerate(BaseModel):
    """``POST /v1/content/generate``."""

    model_config = ConfigDict(extra="forbid")

    type: ContentTypeIn
    title: Annotated[str, Field(min_length=1, max_length=300)] | None = None
    topic: Topic | None = Field(None, description="what to write about (default: the title)")
    keywords: Words = Field(default_factory=list)
    tone: Tone = Tone.professional
    length: Length = Length.medium
    word_count: int | None = Field(None, ge=30, le=5000, description="overrides `length`")
    platform: NetworkIn | None = Field(None, description="for social posts: twitter (x), linkedin, facebook, instagram")
    hashtags: Hashtags = Field(default_factory=list)
    call_to_action: LongText | None = None

    def to_brief(self) -> ContentBrief:
        topic = self.topic or self.title
        if topic is None:
            raise ValueError("give a title or a topic")
        words = self.word_count or (None if self.type == ContentType.social else WORDS_FOR_LENGTH[self.length])
        return ContentBrief(
            type=self.type,
            topic=topic,
            title=self.title,
            keywords=self.keywords,
            tone=self.tone,
            word_count=words,
            call_to_action=self.call_to_action,
            network=self.platform if self.type == ContentType.social else None,
            hashtags=self.hashtags,
        )


class BlogPostRequest(BaseModel):
    """``POST /api/content-generation/blog-post``."""

    model_config = ConfigDict(extra="forbid")

    topic: Topic
    word_count: int = Field(800, ge=100, le=5000)
    keywords: Words = Field(default_factory=list)
    call_to_action: LongText | None = None
    tone: Tone = Tone.professional

    def to_brief(self) -> ContentBrief:
        return ContentBrief(
            type=ContentType.blog,
            topic=self.topic,
            keywords=self.keywords,
            tone=self.tone,
            word_count=self.word_count,
            call_to_action=self.call_to_action,
        )


class SocialMediaRequest(BaseModel):
    """``POST /api/content-generation/social-media``."""

    model_config = ConfigDict(extra="forbid")

    topic: Topic
    platform: NetworkIn
    hashtags: Hashtags = Field(default_factory=list)
    call_to_action: LongText | None = None
    tone: Tone = Tone.friendly

    def to_brief(self) -> ContentBrief:
        return ContentBrief(
            type=ContentType.social,
            topic=self.topic,
            tone=self.tone,
            network=self.platform,
            hashtags=self.hashtags,
            call_to_action=self.call_to_action,
        )


class NewsletterRequest(BaseModel):
    """``POST /api/content-generation/email-newsletter``."""

    model_config = ConfigDict(extra="forbid")

    topic: Topic
    newsletter_type: Phrase | None = None
    content_sections: Words = Field(default_factory=list)
    primary_goal: Phrase | None = None
    call_to_action: LongText | None = None
    word_count: int = Field(500, ge=100, le=5000)
    tone: Tone = Tone.friendly

    def to_brief(self) -> ContentBrief:
        return ContentBrief(
            type=ContentType.email,
            topic=self.topic,
            tone=self.tone,
            word_count=self.word_count,
            sections=self.content_sections,
            newsletter_type=self.newsletter_type,
            primary_goal=self.primary_goal,
            call_to_action=self.call_to_action,
        )


class ProductDescriptionRequest(BaseModel):
    """``POST /api/content-generation/product-description``."""

    model_config = ConfigDict(extra="forbid")

    product_name: Phrase
    product_category: Phrase | None = None
    key_features: LongText | None = None
    primary_benefits: LongText | None = None
    technical_specifications: LongText | None = None
    price_point: Phrase | None = None
    unique_selling_proposition: LongText | None = None
    platform: Phrase | None = Field(None, description="where it will be shown: website, marketplace...")
    keywords: Words = Field(default_factory=list)
    tone: Tone = Tone.persuasive

    def to_brief(self) -> ContentBrief:
        facts = {
            "name": self.product_name,
            "category": self.product_category,
            "features": self.key_features,
            "benefits": self.primary_benefits,
            "specifications": self.technical_specifications,
            "price": self.price_point,
            "usp": self.unique_selling_proposition,
        }
        return ContentBrief(
            type=ContentType.product,
            topic=self.product_name,
            title=self.product_name,
            keywords=self.keywords,
            tone=self.tone,
            product={key: value for key, value in facts.items() if value},
            channel=self.platform,
        )


class GenerationAccepted(BaseModel):
    """What the ``/api`` generation endpoints answer at once (the spec's ``message`` and ``status``)."""

    message: str
    status: str = "pending"
    content_id: EndpointsId
    run_id: EndpointsId


class ContentAccepted(BaseModel):
    """``POST /v1/content/generate`` when the draft was not written within the wait: poll ``GET /v1/content/{id}``."""

    id: str
    status: ContentStatus
    run_id: str
    message: str


# ---- records


class ContentUpdate(BaseModel):
    """``PATCH /v1/content/{id}``: the text while it is a draft; ``status: approved`` approves (managers, admins)."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    body: Annotated[str, Field(min_length=1, max_length=200_000)] | None = None
    tags: list[Annotated[str, Field(min_length=1, max_length=50)]] | None = Field(None, max_length=50)
    status: ContentStatus | None = Field(None, description="approved, or scheduled with a future published_at")
    published_at: datetime | None = Field(None, description="with status scheduled: when to publish")
    platform: str | None = Field(None, max_length=40, description="with status scheduled: where to publish")


class ContentFilter(BaseModel):
    type: ContentType | None = None
    status: ContentStatus | None = None


class ContentMetrics(BaseModel):
    views: int = 0
    clicks: int = 0
    shares: int = 0
    comments: int = 0
    conversions: int = 0


class ContentSummary(BaseModel):
    """A list item on ``/v1``."""

    # By name too: the detail view is built from a dumped ``ContentPublic`` plus its metrics.
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    id: str
    title: str | None
    type: ContentType
    status: ContentStatus
    created_at: datetime
    published_at: datetime | None
    platform: str | None
    url: str | None


class ContentPublic(ContentSummary):
    """One content item on ``/v1``."""

    body: str | None
    created_by: str
    tags: list[str]
    metadata: dict[str, Any] = Field(validation_alias="meta")


class ContentDetailPublic(ContentPublic):
    metrics: ContentMetrics


class ContentEndpointsItem(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: EndpointsId
    type: EndpointsContentType
    title: str | None
    content: str | None = Field(validation_alias="body")
    status: EndpointsContentStatus
    platform: str | None
    url: str | None
    tags: list[str]
    metadata: dict[str, Any] = Field(validation_alias="meta")
    created_at: datetime
    published_at: datetime | None


class ContentEndpointsPublic(BaseModel):
    """``GET /api/content-generation/content/{id}``."""

    message: str
    content: ContentEndpointsItem
