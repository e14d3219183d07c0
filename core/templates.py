"""Message templates: jinja2 in a sandbox, so a template can use ``{{name}}`` but never reach Python internals."""

from __future__ import annotations

import functools
import inspect
import re
import time
from collections.abc import Callable
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_OPERAND = 1_000_000
"""The largest number an operator, filter or call takes in a template: plenty for a message, and no
``10**10**9`` or ``center(10**9)``."""
MAX_EXPONENT = 100
"""The largest exponent: ``MAX_OPERAND ** MAX_EXPONENT`` is still computed in microseconds."""
MAX_TEXT = 100_000
"""The longest text (or list) a template may build in one step, and the longest message it may render:
``'a' * 10**9`` or ``replace('a', 'b' * 10**5)`` would take gigabytes of the API's or the worker's memory."""
RENDER_SECONDS = 1.0
"""A render that is still working after this is stopped (checked at every operator, filter and call)."""

_WIDE_FORMAT = re.compile(r"%[-#0 +]*\d*(\.\d*)?\d{7}|\{[^{}]*:[^{}]*\d{7}[^{}]*\}")
"""A width or precision of seven digits or more in a ``%`` or ``str.format`` format: ``'%999999999s' % x``."""
_deadline: ContextVar[float] = ContextVar("template_render_deadline", default=float("inf"))


def _too_large(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and abs(value) > MAX_OPERAND


def _length(value: object) -> int:
    return len(value) if isinstance(value, str | list | tuple) else len(str(value))


def _grown_by_padding(text: str, width: object = 0, *_: Any, **__: Any) -> int:
    return max(len(text), width if isinstance(width, int) else 0)


def _grown_by_indent(text: str, width: object = 4, *_: Any, **__: Any) -> int:
    return len(text) + (text.count("\n") + 1) * (_length(width) if isinstance(width, str) else int(width or 0))  # type: ignore[call-overload]


def _grown_by_replace(text: str, old: object = "", new: object = "", count: object = None, *_: Any, **__: Any) -> int:
    old_text, new_text = str(old), str(new)
    found = text.count(old_text) if old_text else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * max(0, len(new_text) - len(old_text))


def _grown_by_tabs(text: str, tabsize: object = 8, *_: Any, **__: Any) -> int:
    return len(text) + text.count("\t") * (tabsize if isinstance(tabsize, int) else 8)


_GROWTH: dict[str, Callable[..., int]] = {
    "center": _grown_by_padding,
    "ljust": _grown_by_padding,
    "rjust": _grown_by_padding,
    "zfill": _grown_by_padding,
    "indent": _grown_by_indent,
    "replace": _grown_by_replace,
    "expandtabs": _grown_by_tabs,
}
"""The text filters and methods whose result can dwarf their input, each with an estimate of its length
computed before the call (afterwards the memory is already spent)."""


def _refuse_overtime() -> None:
    if time.monotonic() > _deadline.get():
        raise SecurityError(f"the template took longer than {RENDER_SECONDS:g}s to render")


def _refuse_unbounded(name: str, subject: object, arguments: tuple[Any, ...], keywords: dict[str, Any]) -> None:
    """Raise ``SecurityError`` before a filter or call that would run too long or build too much."""
    _refuse_overtime()
    if any(_too_large(value) for value in (*arguments, *keywords.values())):
        raise SecurityError(f"numbers above {MAX_OPERAND} cannot be passed to {name!r}")
    if isinstance(subject, str):
        estimate = _GROWTH.get(name)
        if estimate is not None and estimate(subject, *arguments, **keywords) > MAX_TEXT:
            raise SecurityError(f"{name!r} may not build more than {MAX_TEXT} characters")
        if name in ("format", "format_map") and _WIDE_FORMAT.search(subject):
            raise SecurityError(f"format widths above {MAX_OPERAND} are not allowed")


def _bounded_join(separator: str, items: list[Any]) -> None:
    if sum(_length(item) for item in items) + max(0, len(items) - 1) * len(separator) > MAX_TEXT:
        raise SecurityError(f"'join' may not build more than {MAX_TEXT} characters")


def _bounded_filter(name: str, implementation: Callable[..., Any]) -> Callable[..., Any]:
    passes_a_context = getattr(implementation, "jinja_pass_arg", None) is not None

    @functools.wraps(implementation)  # keeps ``jinja_pass_arg``, so jinja still passes the context first
    def bounded(*arguments: Any, **keywords: Any) -> Any:
        passed, (value, *rest) = arguments[:passes_a_context], arguments[passes_a_context:]
        if name == "join":
            value = list(value)
            _bounded_join(str(rest[0] if rest else keywords.get("d", "")), value)
        _refuse_unbounded(name, value, tuple(rest), keywords)
        return implementation(*passed, value, *rest, **keywords)

    return bounded


class _MessageSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, with whatever could exhaust memory or CPU bounded: numbers, the text a step may build, the
    output, the time, and loops within loops (rejected when the template is compiled)."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _bounded_filter(name, filter_) for name, filter_ in self.filters.items()}
        # lipsum(n) writes n paragraphs of filler: nothing a message needs, and a way to build megabytes.
        del self.globals["lipsum"]

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _refuse_overtime()
        if operator == "%":
            if isinstance(left, str):
                _refuse_unbounded("format", left, right if isinstance(right, tuple) else (right,), {})
            return super().call_binop(context, operator, left, right)
        if _too_large(left) or _too_large(right):
            raise SecurityError(f"numbers above {MAX_OPERAND} cannot be used with {operator!r}")
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponents above {MAX_EXPONENT} are not allowed")
        for sequence, count in ((left, right), (right, left)):
            if (
                operator == "*"
                and isinstance(sequence, str | list | tuple)
                and isinstance(count, int)
                and len(sequence) * count > MAX_TEXT
            ):
                raise SecurityError(f"'*' may not build more than {MAX_TEXT} characters or items")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (jinja's names)
        # The sandbox hands str.format over wrapped (``wrap_str_format``); the string is the wrapped method's.
        subject = getattr(inspect.unwrap(__obj), "__self__", None)
        name = getattr(__obj, "__name__", "call")
        if name == "join" and isinstance(subject, str) and args:
            items = list(args[0])
            _bounded_join(subject, items)
            args = (items, *args[1:])
        _refuse_unbounded(name, subject, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)


def _refuse_nested_loops(parsed: nodes.Template) -> None:
    """A loop in a loop (or in a macro or call block, which a loop can call) multiplies two bounded counts into
    an unbounded one; a message never needs either."""
    for node in parsed.find_all((nodes.Macro, nodes.CallBlock)):
        raise SecurityError(f"{type(node).__name__.lower()} blocks are not allowed in a message template")
    for loop in parsed.find_all(nodes.For):
        if loop.recursive or any(True for _ in loop.find_all(nodes.For)):
            raise SecurityError("a loop inside a loop is not allowed in a message template")


_environment = _MessageSandbox(undefined=StrictUndefined, autoescape=False)

# What a template may use. Checked at config time against these samples so a typo is a 422 when the config
# is saved, not a failed send days later. A lead's message knows the lead; a customer's message (review
# request, reminder, referral offer) knows the customer, the sale, the review link and the referral.
_CONTACT_SAMPLE: dict[str, Any] = {
    "name": "Jane Smith",
    "first_name": "Jane",
    "email": "jane@example.com",
    "phone": "+15550100",
    "tags": ["vip"],
    "custom_fields": {},
    "company": {"name": "Acme Inc", "website": "https://acme.example.com"},
    "company_name": "Acme Inc",
}
LEAD_SAMPLE: dict[str, Any] = {**_CONTACT_SAMPLE, "source": "website_form", "status": "new"}
CUSTOMER_SAMPLE: dict[str, Any] = {
    **_CONTACT_SAMPLE,
    "service_name": "Premium Package",
    "amount": "1000.00",
    "platform": "Google",
    "review_link": "https://g.page/r/acme/review",
    "referral_code": "JANE-7KQ4M9XP",
    "referral_offer": "20% off your first purchase",
    "referrer_offer": "10% off your next purchase",
    "referral_expires_on": "2026-06-30",
}


class TemplateRejected(ValueError):
    """The template does not parse, uses an unknown variable, or tries to escape the sandbox."""


@lru_cache(maxsize=256)
def _compiled(template: str) -> Template:
    # A sequence renders the same few templates for every message: parse and compile them once per process,
    # not once per send (compiling cost three times what rendering does). A template that does not compile
    # raises, and lru_cache never caches an exception.
    _refuse_nested_loops(_environment.parse(template))
    return _environment.from_string(template)


def render(template: str, context: dict[str, Any]) -> str:
    deadline = _deadline.set(time.monotonic() + RENDER_SECONDS)
    try:
        rendered: list[str] = []
        length = 0
        for chunk in _compiled(template).generate(context):
            length += len(chunk)
            if length > MAX_TEXT:
                raise SecurityError(f"the message would be longer than {MAX_TEXT} characters")
            rendered.append(chunk)
        return "".join(rendered)
    except SecurityError as exc:
        raise TemplateRejected(f"template tries to access something it may not: {exc}") from exc
    except TemplateError as exc:
        raise TemplateRejected(f"template cannot be rendered: {exc}") from exc
    except Exception as exc:
        # Whatever else a template can provoke ({{ 1/0 }}, a range past the sandbox's limit, an {% include %}
        # with no loader, runaway recursion) is the template's fault: a 422 at save time, never a 500.
        raise TemplateRejected(f"template cannot be rendered: {type(exc).__name__}: {exc}") from exc
    finally:
        _deadline.reset(deadline)


def check(template: str, sample: dict[str, Any] = LEAD_SAMPLE) -> None:
    """Raise ``TemplateRejected`` unless the template renders against ``sample`` (the variables it may use)."""
    render(template, sample)
