"""Writing content: an OpenAI-compatible model when configured, else a deterministic offline writer.

Prompts are jinja2 files beside this module, one per content type. Whoever wrote the text, the platform's
rules are applied afterwards (``finish``): a social post is cut to its network's limit with the hashtags as
given, and word count and reading time are counted from the text, never taken from the model.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import openai
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from activities.messaging.llm import llm_client
from core.config import Settings
from schemas.content import POST_LIMITS, WORDS_PER_MINUTE, ContentBrief, ContentType, SocialNetwork

log = logging.getLogger(__name__)

PROMPTS = Path(__file__).parent / "prompts"
_prompts = Environment(loader=FileSystemLoader(PROMPTS), undefined=StrictUndefined, autoescape=False)  # noqa: S701
DEFAULT_WORDS = {ContentType.blog: 800, ContentType.social: 60, ContentType.email: 500, ContentType.product: 150}
NETWORK_LABELS = {
    SocialNetwork.twitter: "X (Twitter)",
    SocialNetwork.linkedin: "LinkedIn",
    SocialNetwork.facebook: "Facebook",
    SocialNetwork.instagram: "Instagram",
}
_WORD = re.compile("[\\w][\\w'\u2019-]*")  # apostrophes straight or curly keep "don't" one word
ELLIPSIS = "…"


class ContentRefused(Exception):
    """The model's service refused the request itself (a 400): the same request would fail again."""


@dataclass(frozen=True)
class Written:
    title: str
    body: str
    tags: list[str] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    writer: str = "offline"
    model: str | None = None
    tokens: int | None = None
    structured: bool = True
    """False when the server did not support structured output and the reply was parsed as plain text."""


@dataclass(frozen=True)
class Company:
    name: str
    industry: str | None = None


class ContentWriter(Protocol):
    name: str

    async def write(self, brief: ContentBrief, company: Company) -> Written: ...


def target_words(brief: ContentBrief) -> int:
    return brief.word_count or DEFAULT_WORDS[brief.type]


def post_limit(brief: ContentBrief) -> int | None:
    return POST_LIMITS[brief.network] if brief.type == ContentType.social and brief.network else None


def prompts(brief: ContentBrief, company: Company) -> tuple[str, str]:
    """The system and user prompts for the brief, from the jinja2 files."""
    context: dict[str, Any] = {
        "brief": brief,
        "company_name": company.name,
        "industry": company.industry,
        "words": target_words(brief),
        "limit": post_limit(brief),
        "network_label": NETWORK_LABELS.get(brief.network, "social media") if brief.network else "social media",
    }
    system = _prompts.get_template("system.j2").render(context)
    return system.strip(), _prompts.get_template(f"{brief.type}.j2").render(context).strip()


def count_words(text: str) -> int:
    return len(_WORD.findall(text))


def finish(brief: ContentBrief, written: Written) -> tuple[Written, dict[str, Any]]:
    """Apply the platform's rules to what was written and measure it: the text as stored, and its metadata."""
    body = written.body.strip()
    tags = list(dict.fromkeys([*written.tags, *brief.keywords]))[:20]
    limit = post_limit(brief)
    if limit is not None:
        body = _fit(body, brief.hashtags, limit)
    words = count_words(body)
    metadata: dict[str, Any] = {
        "word_count": words,
        "reading_time": max(1, math.ceil(words / WORDS_PER_MINUTE)),
        "writer": written.writer,
        "model": written.model,
        "tokens_used": written.tokens,
        "sections": written.sections,
    }
    if brief.type == ContentType.social:
        metadata.update(hashtags=brief.hashtags, characters=len(body), character_limit=limit)
    if not written.structured:
        metadata["structured_output"] = False
    return replace(written, body=body, tags=tags), metadata


def _fit(text: str, hashtags: list[str], limit: int) -> str:
    """``text`` and the hashtags (kept whole, as given) in at most ``limit`` characters, cut at a word."""
    tail = f"\n\n{' '.join(hashtags)}" if hashtags else ""
    room = limit - len(tail)
    if room <= len(ELLIPSIS):
        return " ".join(hashtags)[:limit]
    text = " ".join(text.replace(tail.strip(), "").split()) if hashtags else text
    if len(text) > room:
        cut = text[: room - len(ELLIPSIS)]
        cut = cut[: cut.rfind(" ")] if " " in cut else cut
        text = cut.rstrip(" ,.;:-") + ELLIPSIS
    return text + tail


class OfflineContentWriter:
    """No network and the same text for the same brief: sensible placeholder copy from the brief's own words."""

    name = "offline"

    async def write(self, brief: ContentBrief, company: Company) -> Written:
        topic = brief.topic.strip().rstrip(".")
        keywords = brief.keywords or [topic]
        cta = f"\n\n{brief.call_to_action.strip()}" if brief.call_to_action else ""
        if brief.type == ContentType.social:
            body = f"{_sentence(topic)} At {company.name} we help with {', '.join(keywords[:3])}.{cta}"
            return Written(title=f"{topic.capitalize()} ({brief.network or 'social'})", body=body, tags=keywords)
        if brief.type == ContentType.product:
            return self._product(brief, company)
        sections = brief.sections or [f"Why {topic} matters", f"How {company.name} can help", "Next steps"]
        paragraphs = _paragraphs(topic, keywords, sections, target_words(brief), company.name)
        title = brief.title or (f"{topic.capitalize()}: news from {company.name}" if brief.type == "email" else None)
        title = title or f"{topic.capitalize()}: a practical guide"
        body = "\n\n".join(f"## {heading}\n\n{text}" for heading, text in zip(sections, paragraphs, strict=True))
        return Written(title=title, body=body + cta, tags=keywords, sections=sections)

    def _product(self, brief: ContentBrief, company: Company) -> Written:
        product = brief.product
        name = product.get("name", brief.topic)
        lines = [f"{name}{' — ' + product['category'] if product.get('category') else ''} by {company.name}."]
        for label, key in (("Features", "features"), ("Benefits", "benefits"), ("Specifications", "specifications")):
            if product.get(key):
                lines.append(f"{label}: {product[key]}.")
        if product.get("usp"):
            lines.append(f"What sets it apart: {product['usp']}.")
        if product.get("price"):
            lines.append(f"Price: {product['price']}.")
        return Written(title=name, body="\n\n".join(lines), tags=brief.keywords)


def _sentence(text: str) -> str:
    return f"{text[:1].upper()}{text[1:]}."


_SENTENCES = (
    "{Heading}: it is the question customers of {company} ask most about {topic}.",
    "Start with {keyword}: small, steady changes there add up faster than one big project.",
    "Write down where the time goes today, so you can tell what changed next month.",
    "Pick one step you can finish this week, and one you can measure by the end of the quarter.",
    "The businesses that get the most from {keyword} treat it as a habit, not a one-off.",
    "Ask the people who do the work: they know which part of {topic} wastes the most effort.",
    "Keep what works, drop what does not, and say plainly why to everyone involved.",
    "When a step needs more than your own hands, {company} can help you plan it.",
    "A short checklist beats a long plan: it gets used.",
    "Review it again in a month; {topic} rewards patience more than perfection.",
)


def _paragraphs(topic: str, keywords: list[str], sections: list[str], words: int, company: str) -> list[str]:
    """One paragraph per section, together about ``words`` long, drawing on the brief's own words.

    Sentences rotate through a pool from a different starting point in each section, so a long piece does not
    read as one sentence repeated; the same brief always gives the same text.
    """
    per_section = max(20, words // max(1, len(sections)))
    paragraphs = []
    for index, heading in enumerate(sections):
        text: list[str] = []
        while count_words(" ".join(text)) < per_section:
            turn = len(text)
            template = _SENTENCES[(index * 3 + turn) % len(_SENTENCES)]
            text.append(
                template.format(
                    Heading=heading[:1].upper() + heading[1:],
                    company=company,
                    topic=topic,
                    keyword=keywords[(index + turn) % len(keywords)],
                )
            )
        paragraphs.append(" ".join(text))
    return paragraphs


_SCHEMA = {
    "name": "content",
    "strict": True,
    "schema": {
        "type": "object",
        "additionalProperties": False,
        "required": ["title", "body", "tags", "sections"],
        "properties": {
            "title": {"type": "string"},
            "body": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "sections": {"type": "array", "items": {"type": "string"}},
        },
    },
}


_STRUCTURED: Any = {"type": "json_schema", "json_schema": _SCHEMA}


class OpenAIContentWriter:
    """Any OpenAI-compatible chat completions endpoint; structured output first, plain text if unsupported."""

    name = "openai"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def write(self, brief: ContentBrief, company: Company) -> Written:
        system, user = prompts(brief, company)
        messages: list[Any] = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        model = self._settings.llm_model
        async with llm_client(self._settings) as client:
            try:
                completion = await client.chat.completions.create(
                    model=model, messages=messages, response_format=_STRUCTURED
                )
                structured = True
            except openai.BadRequestError as exc:
                if "response_format" not in str(exc).lower() and "json_schema" not in str(exc).lower():
                    raise ContentRefused(f"the model's service refused the request: {exc}") from exc
                log.info("model %s does not take structured output (%s); asking for plain text", model, exc)
                completion = await client.chat.completions.create(model=model, messages=messages)
                structured = False
        text = (completion.choices[0].message.content or "") if completion.choices else ""
        tokens = completion.usage.total_tokens if completion.usage else None
        written = _parse(text, brief)
        return replace(written, writer=self.name, model=completion.model or model, tokens=tokens, structured=structured)


def _parse(text: str, brief: ContentBrief) -> Written:
    """The model's JSON answer, or (a server that ignores the schema) its text: a first line as the title."""
    stripped = text.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", stripped, re.DOTALL)
    candidate = fenced.group(1) if fenced else stripped
    try:
        data = json.loads(candidate)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("body"), str) and data["body"].strip():
        return Written(
            title=str(data.get("title") or brief.title or brief.topic).strip(),
            body=data["body"],
            tags=[str(tag) for tag in data.get("tags") or [] if str(tag).strip()],
            sections=[str(section) for section in data.get("sections") or []],
        )
    lines = [line for line in stripped.splitlines()]
    first = lines[0].strip() if lines else ""
    heading = re.match(r"^(?:#+\s*|title:\s*)(.+)$", first, re.IGNORECASE)
    if heading and len(lines) > 1:
        return Written(title=heading.group(1).strip(), body="\n".join(lines[1:]).strip(), structured=False)
    return Written(title=brief.title or brief.topic, body=stripped, structured=False)


def writer_for(settings: Settings) -> ContentWriter:
    return OpenAIContentWriter(settings) if settings.llm_base_url else OfflineContentWriter()
