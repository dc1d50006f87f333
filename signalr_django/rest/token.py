"""HS256 bearer tokens as Azure SignalR Service's REST API takes them.

A caller signs a JWT with the shared access key: header `{"alg": "HS256"}`, claims `aud`
(the request URL without query string or trailing slash) and `exp` (required), `nbf`
(optional). Only HS256 is accepted, so no algorithm confusion is possible and the
standard library's `hmac` does the whole job: the signature is compared in constant time
with every configured key (several during a key rotation), then the claims are checked
with a leeway for clocks that disagree.

Errors say what is wrong with the token but never repeat it: tokens must not reach logs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

# Far above any real token (a few hundred bytes) and below what servers take as a header.
MAX_TOKEN_LENGTH = 8192


class TokenError(Exception):
    """The bearer token is missing, malformed, badly signed, expired or for another URL."""


def _b64decode(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("The token is not base64url-encoded.") from None


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_object(part: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(part))
    except (UnicodeDecodeError, ValueError):
        raise TokenError(f"The token's {what} is not JSON.") from None
    if not isinstance(value, dict):
        raise TokenError(f"The token's {what} is not a JSON object.")
    return value


def sign(claims: dict[str, Any], key: str) -> str:
    """A compact HS256 JWT of `claims` signed with `key` (for Python callers and tests)."""
    header = _b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = hmac.new(key.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64encode(signature)}"


def normalize_url(url: str) -> tuple[str, str, str]:
    """(scheme, host, path) of `url`, compared case-insensitively where URLs are.

    The query string and a trailing slash are dropped, and the path is percent-decoded, so a
    caller may sign the URL it sends (`users/a%20b`) or its decoded form alike.
    """
    parts = urlsplit(url)
    path = unquote(parts.path).rstrip("/")
    return parts.scheme.lower(), parts.netloc.lower(), path


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenError(f"The token's '{name}' claim is not a number.")
    return float(value)


def verify(
    token: str,
    keys: Sequence[str],
    audience: str,
    leeway: float = 60.0,
    now: float | None = None,
) -> dict[str, Any]:
    """The claims of `token` once its signature, `exp`, `nbf` and `aud` are checked.

    `audience` is the URL the request was made to. Raises TokenError saying why the
    token is refused.
    """
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("The token is too long.")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("The token is not a JWT (header.payload.signature).")
    header_part, payload_part, signature_part = parts
    header = _json_object(header_part, "header")
    if header.get("alg") != "HS256":
        raise TokenError("The token must be signed with HS256.")
    signature = _b64decode(signature_part)
    try:
        signing_input = f"{header_part}.{payload_part}".encode("ascii")
    except UnicodeEncodeError:
        raise TokenError("The token is not base64url-encoded.") from None
    valid = False
    for key in keys:
        expected = hmac.new(key.encode(), signing_input, hashlib.sha256).digest()
        # Every key is tried, so the time taken does not tell which one nearly matched.
        valid |= hmac.compare_digest(expected, signature)
    if not valid:
        raise TokenError("The token's signature does not match the access key.")
    claims = _json_object(payload_part, "payload")
    current = time.time() if now is None else now
    exp = _number(claims, "exp")
    if exp is None:
        raise TokenError("The token has no 'exp' claim.")
    if current > exp + leeway:
        raise TokenError("The token has expired.")
    nbf = _number(claims, "nbf")
    if nbf is not None and current < nbf - leeway:
        raise TokenError("The token is not valid yet ('nbf').")
    aud = claims.get("aud")
    listed = aud if isinstance(aud, list) else [aud]
    audiences = [a for a in listed if isinstance(a, str)]
    if not audiences or len(audiences) != len(listed):
        raise TokenError("The token has no 'aud' claim (the request URL).")
    wanted = normalize_url(audience)
    if not any(normalize_url(a) == wanted for a in audiences):
        raise TokenError("The token's audience is not this request's URL.")
    return claims
