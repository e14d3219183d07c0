"""Password hashing (argon2 via pwdlib) and JWTs (PyJWT, HS256 only)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt
from pwdlib import PasswordHash

from core.config import Settings

ALGORITHM = "HS256"
TokenKind = Literal["access", "refresh"]

_password_hash = PasswordHash.recommended()
# Verified against when the account does not exist, so that "unknown user" costs the same
# argon2 work as "wrong password" and login time does not reveal which emails are registered.
_DUMMY_HASH = _password_hash.hash("timing-equaliser-not-a-real-password")


def hash_password(password: str) -> str:
    return _password_hash.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        _password_hash.verify(password, _DUMMY_HASH)
        return False
    return _password_hash.verify(password, password_hash)


@dataclass(frozen=True)
class TokenClaims:
    user_id: str
    company_id: str
    kind: TokenKind
    jti: str
    expires_at: datetime
    issued_at: datetime | None = None
    """As the token carries it (to the microsecond); None only for claims not yet encoded."""


class InvalidToken(Exception):
    """The token is malformed, expired, of the wrong kind or signed with another key."""


def create_token(settings: Settings, *, user_id: str, company_id: str, kind: TokenKind) -> TokenClaims:
    now = datetime.now(UTC)
    lifetime = (
        timedelta(minutes=settings.access_token_minutes)
        if kind == "access"
        else timedelta(days=settings.refresh_token_days)
    )
    return TokenClaims(
        user_id=user_id, company_id=company_id, kind=kind, jti=uuid.uuid4().hex, expires_at=now + lifetime
    )


def encode_token(settings: Settings, claims: TokenClaims) -> str:
    payload = {
        "sub": claims.user_id,
        "cmp": claims.company_id,
        "typ": claims.kind,
        "jti": claims.jti,
        # Fractional seconds (a NumericDate may have them): "sign out everywhere" must refuse a token
        # issued earlier in the same second and accept one issued just after.
        "iat": datetime.now(UTC).timestamp(),
        "exp": claims.expires_at,
    }
    return jwt.encode(payload, settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM)


def decode_token(settings: Settings, token: str, *, expected: TokenKind) -> TokenClaims:
    try:
        # An explicit algorithm list is what refuses "alg: none" and RS/HS confusion.
        payload = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[ALGORITHM],
            options={"require": ["sub", "cmp", "typ", "jti", "exp"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    if payload["typ"] != expected:
        raise InvalidToken(f"expected a {expected} token")
    return TokenClaims(
        user_id=payload["sub"],
        company_id=payload["cmp"],
        kind=expected,
        jti=payload["jti"],
        expires_at=datetime.fromtimestamp(payload["exp"], UTC),
        issued_at=datetime.fromtimestamp(payload["iat"], UTC) if "iat" in payload else None,
    )


# ---- signed links (unsubscribe) and inbound-webhook keys: HMAC, no database lookup to verify.

_LINK_SALT = b"bas-link-v1:"


def _mac(settings: Settings, purpose: str, payload: str) -> str:
    key = _LINK_SALT + settings.jwt_secret.get_secret_value().encode()
    digest = hmac.new(key, f"{purpose}:{payload}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode().rstrip("=")


def sign_unsubscribe(settings: Settings, company_id: str, contact_id: str) -> str:
    """A token for the unsubscribe link in every marketing message to a lead or customer; it never expires."""
    payload = f"{company_id}.{contact_id}"
    return f"{payload}.{_mac(settings, 'unsubscribe', payload)}"


def verify_unsubscribe(settings: Settings, token: str) -> tuple[str, str] | None:
    """``(company_id, contact_id)`` for a genuine token, else ``None``."""
    company_id, _, rest = token.partition(".")
    contact_id, _, mac = rest.partition(".")
    if not (company_id and contact_id and mac):
        return None
    expected = _mac(settings, "unsubscribe", f"{company_id}.{contact_id}")
    return (company_id, contact_id) if hmac.compare_digest(mac.encode(), expected.encode()) else None


def inbound_key(settings: Settings, company_id: str) -> str:
    """The secret path segment a company gives its email/SMS provider for inbound webhooks."""
    return f"{company_id}.{_mac(settings, 'inbound', company_id)}"


def verify_inbound_key(settings: Settings, key: str) -> str | None:
    company_id, _, mac = key.partition(".")
    if not company_id or not mac:
        return None
    # As bytes: compare_digest refuses (TypeError) a str with non-ASCII characters, and a key in a URL is any text.
    return company_id if hmac.compare_digest(mac.encode(), _mac(settings, "inbound", company_id).encode()) else None


# ---- API keys: ``bas_{scope}_{8 chars}`` is the prefix (public, unique), then ``_{secret}``.

API_KEY_MARK = "bas_"


def new_api_key(scope_code: str) -> tuple[str, str]:
    """A fresh (prefix, whole key). The key is shown once; only ``api_key_digest`` of it is kept."""
    prefix = f"{API_KEY_MARK}{scope_code}_{secrets.token_hex(4)}"
    return prefix, f"{prefix}_{secrets.token_urlsafe(32)}"


def api_key_prefix(key: str) -> str | None:
    """The prefix part of a key as presented, or None when it is not shaped like one of ours."""
    if not key.startswith(API_KEY_MARK):
        return None
    # Split from the left: the url-safe secret may itself contain "_".
    parts = key.split("_", 3)
    if len(parts) != 4 or not all(parts[1:3]) or len(parts[3]) < 32:
        return None
    return "_".join(parts[:3])


def api_key_digest(key: str) -> str:
    # A plain SHA-256 is enough: the secret has 256 bits of entropy, so there is nothing to brute-force
    # and a slow hash would only slow down every server-to-server call.
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_matches(key: str, digest: str) -> bool:
    return hmac.compare_digest(api_key_digest(key), digest)
