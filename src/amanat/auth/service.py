"""The authorization server's use cases: client authentication, grants, revocation,
introspection, and verification of access tokens for the resource endpoints.

Errors are :class:`OAuthError` with RFC 6749 codes; the token endpoint renders them as
``{"error", "error_description"}`` and nothing is changed by a refused request, except the
deliberate revocation of a refresh-token family when a used token is presented again.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

from amanat.auth.access_cache import FORGET_AFTER_SECONDS, AccessCache
from amanat.auth.errors import OAuthError, TokenRejected
from amanat.auth.pkce import check_challenge, verifier_matches
from amanat.auth.ports import (
    AccessTokenCodec,
    AuthorizationCode,
    AuthTx,
    ClientAssertionVerifier,
    InvalidToken,
    RefreshToken,
)
from amanat.identity.access import CONSENT_SCOPES, grantable_scopes, parse_scope_string
from amanat.identity.domain import ClientAuthMethod, OAuthClient, Partner
from amanat.identity.ports import SecretHasher
from amanat.kernel.clock import Clock
from amanat.kernel.errors import InvalidInput, Unavailable
from amanat.kernel.ids import new_id
from amanat.platform.audit import recorder as audit
from amanat.platform.audit.domain import Actor
from amanat.platform.db.ports import TransactionFactory

JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_BYTES = 8192
MAX_ASSERTION_LIFETIME = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class OAuthConfig:
    issuer: str
    audience: str
    token_endpoint: str
    access_token_ttl: timedelta = timedelta(seconds=300)
    refresh_token_ttl: timedelta = timedelta(days=90)
    code_ttl: timedelta = timedelta(seconds=60)
    mode: str = "sandbox"


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """What the request presented to authenticate the client, as parsed by the edge."""

    method: str | None  # client_secret_basic | client_secret_post | private_key_jwt | None
    client_id: str | None = None
    secret: str | None = None
    assertion: str | None = None
    assertion_type: str | None = None


@dataclass(frozen=True, slots=True)
class TokenResult:
    access_token: str
    expires_in: int
    scope: str
    refresh_token: str | None = None
    token_type: str = "Bearer"

    def as_response(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        if self.refresh_token:
            body["refresh_token"] = self.refresh_token
        return body


@dataclass(frozen=True, slots=True)
class AccessContext:
    """The verified caller of a resource endpoint."""

    client_id: str
    partner_id: str
    scopes: frozenset[str]
    subject: str
    jti: str
    consent_id: str | None = None
    mode: str = "sandbox"
    claims: dict[str, Any] = field(default_factory=dict)
    # The partner as read with the token check, so a payout need not read it again.
    partner: Partner | None = None


def token_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


_LATEST = datetime(9999, 12, 31, tzinfo=UTC)
# What a consent id may look like: it is stored with the code (64 characters wide) and
# travels in tokens, so it is bounded and plain.
_CONSENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def _is_numeric_date(value: object) -> TypeGuard[int | float]:
    """RFC 7519 NumericDate: a JSON number (not a boolean, not NaN or infinite)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _expiry(exp: object, now: datetime) -> datetime:
    """A verified token's ``exp`` as a datetime; one beyond what datetime holds (another
    issuer's token may say anything) becomes the latest instant, i.e. never purged."""
    if not _is_numeric_date(exp):
        return _LATEST
    try:
        return min(datetime.fromtimestamp(exp, tz=UTC), _LATEST)
    except (OverflowError, OSError, ValueError):
        return _LATEST if exp > now.timestamp() else now


class OAuthService:
    def __init__(
        self,
        transactions: TransactionFactory[AuthTx],
        clock: Clock,
        hasher: SecretHasher,
        codec: AccessTokenCodec,
        assertions: ClientAssertionVerifier,
        config: OAuthConfig,
        cache: AccessCache | None = None,
        stored_jti: Callable[[str], str] = lambda jti: jti,
    ) -> None:
        self._tx = transactions
        self._cache = cache
        self._stored_jti = stored_jti
        self._clock = clock
        self._hasher = hasher
        self._codec = codec
        self._assertions = assertions
        self.config = config
        self._unknown_client_hash: str | None = None

    async def _dummy_hash(self) -> str:
        # A real hash of a random secret, so an unknown client costs what a known one does.
        if self._unknown_client_hash is None:
            self._unknown_client_hash = await self._hasher.hash(secrets.token_urlsafe(32))
        return self._unknown_client_hash

    # -- client authentication ---------------------------------------------------------

    async def authenticate_client(self, creds: ClientCredentials) -> tuple[OAuthClient, Partner]:
        if creds.method == ClientAuthMethod.PRIVATE_KEY_JWT.value and not creds.client_id:
            # No client_id in the form: the assertion's (unverified) subject names it.
            creds = replace(creds, client_id=self._assertions.subject(creds.assertion or ""))
        if creds.method is None or not creds.client_id:
            raise OAuthError(
                "invalid_client",
                "Client authentication is required.",
            )
        async with self._tx.read() as tx:
            client = await tx.partners.get_client(creds.client_id)
            partner = await tx.partners.get_partner(client.partner_id) if client else None
        if client is None or partner is None or not client.is_active or not partner.is_active:
            await self._hasher.verify(await self._dummy_hash(), creds.secret or "x")
            raise OAuthError("invalid_client", "Client authentication failed.")
        if creds.method == ClientAuthMethod.PRIVATE_KEY_JWT.value:
            await self._check_assertion(client, creds)
        else:
            allowed = {ClientAuthMethod.SECRET_BASIC, ClientAuthMethod.SECRET_POST}
            if client.auth_method not in allowed or client.secret_hash is None:
                raise OAuthError(
                    "invalid_client",
                    "This client must authenticate with private_key_jwt.",
                )
            if not creds.secret or not await self._hasher.verify(client.secret_hash, creds.secret):
                raise OAuthError(
                    "invalid_client",
                    "Client authentication failed.",
                )
            if self._hasher.needs_rehash(client.secret_hash):
                await self._rehash(client.id, client.secret_hash, creds.secret)
        return client, partner

    async def _rehash(self, client_id: str, old_hash: str, secret: str) -> None:
        """Store a proven secret in the current scheme (once per client: argon2 digests
        from before SHA-256). Housekeeping: a busy database leaves it for the next time
        rather than failing a good authentication."""
        new_hash = await self._hasher.hash(secret)
        try:
            async with self._tx.write() as tx:
                await tx.partners.rehash_client_secret(client_id, old_hash, new_hash)
        except Unavailable:
            return

    async def _check_assertion(self, client: OAuthClient, creds: ClientCredentials) -> None:
        if client.auth_method is not ClientAuthMethod.PRIVATE_KEY_JWT:
            raise OAuthError("invalid_client", "This client authenticates with a secret.")
        if creds.assertion_type != JWT_BEARER_ASSERTION or not creds.assertion:
            raise OAuthError(
                "invalid_request", f"client_assertion_type must be {JWT_BEARER_ASSERTION}."
            )
        if len(creds.assertion.encode()) > MAX_ASSERTION_BYTES:
            raise OAuthError("invalid_request", "client_assertion is too large.")
        try:
            claims = await self._assertions.verify(creds.assertion, client)
        except InvalidToken as exc:
            raise OAuthError(
                "invalid_client", f"client_assertion rejected: {exc.reason}."
            ) from None
        now = self._clock.now()
        exp, jti = claims.get("exp"), claims.get("jti")
        if claims.get("iss") != client.id or claims.get("sub") != client.id:
            raise OAuthError(
                "invalid_client", "client_assertion iss and sub must be the client_id."
            )
        aud = claims.get("aud")
        # aud is a string or an array of strings; anything else (an object, numbers) is
        # simply not our audience, and must not reach set() unhashable.
        audiences = {a for a in (aud if isinstance(aud, list) else [aud]) if isinstance(a, str)}
        if not ({self.config.token_endpoint, self.config.issuer} & audiences):
            raise OAuthError(
                "invalid_client",
                "client_assertion aud must be the token endpoint or the issuer.",
            )
        if not _is_numeric_date(exp) or not isinstance(jti, str) or not jti:
            raise OAuthError("invalid_client", "client_assertion needs exp and jti.")
        # Compare as numbers first: an absurd exp must not reach datetime (OverflowError).
        now_ts = now.timestamp()
        if exp <= now_ts:
            raise OAuthError("invalid_client", "client_assertion has expired.")
        if exp > now_ts + MAX_ASSERTION_LIFETIME.total_seconds():
            raise OAuthError(
                "invalid_client", "client_assertion exp may be at most 5 minutes ahead."
            )
        expires_at = datetime.fromtimestamp(exp, tz=now.tzinfo)
        async with self._tx.write() as tx:
            fresh = await tx.tokens.remember_assertion(client.id, jti, expires_at)
        if not fresh:
            raise OAuthError("invalid_client", "client_assertion jti was already used.")

    # -- grants ------------------------------------------------------------------------

    async def token(
        self, grant_type: str | None, form: dict[str, str], creds: ClientCredentials
    ) -> TokenResult:
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is required.")
        handlers = {
            "client_credentials": self._client_credentials,
            "authorization_code": self._authorization_code,
            "refresh_token": self._refresh_token,
        }
        handler = handlers.get(grant_type)
        if handler is None:
            raise OAuthError(
                "unsupported_grant_type", f"grant_type '{grant_type[:40]}' is not supported."
            )
        client, partner = await self.authenticate_client(creds)
        return await handler(client, partner, form)

    async def _client_credentials(
        self, client: OAuthClient, partner: Partner, form: dict[str, str]
    ) -> TokenResult:
        requested = parse_scope_string(form.get("scope"))
        # Open-banking scopes need a PSU's consent, so client_credentials may carry them
        # only for consent set-up calls; resource access goes through authorization_code.
        allowed = client.effective_scopes(partner)
        try:
            scopes = grantable_scopes(requested, allowed)
        except InvalidInput as exc:
            raise OAuthError("invalid_scope", exc.message) from None
        access, _jti, _exp = await self._mint(client, partner, scopes, subject=client.id)
        return TokenResult(
            access_token=access, expires_in=self._ttl_seconds, scope=" ".join(scopes)
        )

    async def _authorization_code(
        self, client: OAuthClient, partner: Partner, form: dict[str, str]
    ) -> TokenResult:
        code, redirect_uri = form.get("code"), form.get("redirect_uri")
        if not code or not redirect_uri:
            raise OAuthError("invalid_request", "code and redirect_uri are required.")
        now = self._clock.now()
        # One transaction, the code's row locked throughout: of two concurrent exchanges
        # of one code, the second always sees it used and revokes what the first got.
        async with self._tx.write() as tx:
            stored = await tx.tokens.get_code_for_update(token_hash(code))
            if stored is None or stored.client_id != client.id:
                raise OAuthError("invalid_grant", "The authorization code is not valid.")
            if stored.used_at is None:
                if stored.expires_at <= now:
                    raise OAuthError("invalid_grant", "The authorization code has expired.")
                if stored.redirect_uri != redirect_uri:
                    raise OAuthError(
                        "invalid_grant", "redirect_uri does not match the authorization request."
                    )
                if not verifier_matches(form.get("code_verifier"), stored.code_challenge):
                    raise OAuthError(
                        "invalid_grant", "code_verifier does not match the code_challenge."
                    )
                family_id = new_id("token_family")
                await tx.tokens.mark_code_used(stored.code_hash, now, family_id)
                return await self._issue_with_refresh(
                    tx,
                    client,
                    partner,
                    list(stored.scopes),
                    stored.subject,
                    stored.consent_id,
                    family_id,
                )
            # Used before (RFC 6749 §4.1.2): refuse, and revoke what it was exchanged for;
            # leaving the block normally commits the revocation before the error is raised.
            if stored.family_id:
                await self._revoke_family(
                    tx, stored.family_id, client.id, "authorization_code_reused"
                )
        raise OAuthError(
            "invalid_grant",
            "The authorization code was already used; tokens issued from it are revoked.",
        )

    async def _refresh_token(
        self, client: OAuthClient, partner: Partner, form: dict[str, str]
    ) -> TokenResult:
        presented = form.get("refresh_token")
        if not presented:
            raise OAuthError("invalid_request", "refresh_token is required.")
        now = self._clock.now()
        reuse_detected = False
        async with self._tx.write() as tx:
            stored = await tx.tokens.get_refresh_for_update(token_hash(presented))
            if stored is None or stored.client_id != client.id:
                raise OAuthError("invalid_grant", "The refresh token is not valid.")
            if stored.revoked_at is not None:
                raise OAuthError("invalid_grant", "The refresh token has been revoked.")
            if stored.used_at is not None:
                await self._revoke_family(tx, stored.family_id, client.id, "refresh_token_reused")
                reuse_detected = True
            elif stored.expires_at <= now:
                raise OAuthError("invalid_grant", "The refresh token has expired.")
            else:
                requested = parse_scope_string(form.get("scope")) or list(stored.scopes)
                if not set(requested) <= set(stored.scopes):
                    raise OAuthError("invalid_scope", "A refresh may only narrow the scopes.")
                # Never beyond what the partner's roles allow today, even if they allowed
                # more when the PSU consented.
                allowed = client.effective_scopes(partner)
                granted = [s for s in requested if s in allowed]
                if not granted:
                    raise OAuthError(
                        "invalid_scope", "None of these scopes is allowed for this client now."
                    )
                await tx.tokens.mark_refresh_used(stored.token_hash, now)
                return await self._issue_with_refresh(
                    tx,
                    client,
                    partner,
                    granted,
                    stored.subject,
                    stored.consent_id,
                    stored.family_id,
                )
        assert reuse_detected
        raise OAuthError(
            "invalid_grant",
            "The refresh token was already used; the whole token family has been revoked.",
        )

    async def revoke_consent_tokens(self, consent_id: str, client_id: str, reason: str) -> int:
        """Revoke the refresh tokens issued under an ended consent, so none mints another
        access token; returns the families revoked. Access tokens already out stay valid
        as tokens: the resource server refuses them by the consent's status, with an
        answer that says why (403 ``UK.OBIE.Resource.InvalidConsentStatus``)."""
        now = self._clock.now()
        async with self._tx.write() as tx:
            families = await tx.tokens.families_of_consent(consent_id)
            for family in families:
                await tx.tokens.revoke_family(family, now)
            if families:
                await audit.record(
                    tx,
                    self._clock,
                    Actor(type="system", id="oauth"),
                    "refresh_family.revoked",
                    target_type="client",
                    target_id=client_id,
                    payload={"consent_id": consent_id, "reason": reason, "families": families},
                )
        return len(families)

    async def _revoke_family(self, tx: AuthTx, family_id: str, client_id: str, reason: str) -> None:
        now = self._clock.now()
        members = await tx.tokens.revoke_family(family_id, now)
        for member in members:
            if member.access_expires_at > now:
                await tx.tokens.revoke_jti(
                    member.access_jti, client_id, member.access_expires_at, now, reason
                )
        await audit.record(
            tx,
            self._clock,
            Actor(type="system", id="oauth"),
            "refresh_family.revoked",
            target_type="client",
            target_id=client_id,
            payload={"family_id": family_id, "reason": reason, "tokens": len(members)},
        )

    async def _issue_with_refresh(
        self,
        tx: AuthTx,
        client: OAuthClient,
        partner: Partner,
        scopes: list[str],
        subject: str,
        consent_id: str | None,
        family_id: str,
    ) -> TokenResult:
        now = self._clock.now()
        access, jti, access_exp = await self._mint(
            client, partner, scopes, subject=subject, consent_id=consent_id
        )
        refresh = "rt_" + secrets.token_urlsafe(32)
        await tx.tokens.add_refresh(
            RefreshToken(
                token_hash=token_hash(refresh),
                family_id=family_id,
                client_id=client.id,
                scopes=tuple(scopes),
                subject=subject,
                consent_id=consent_id,
                access_jti=jti,
                access_expires_at=access_exp,
                issued_at=now,
                expires_at=now + self.config.refresh_token_ttl,
                used_at=None,
                revoked_at=None,
            )
        )
        return TokenResult(
            access_token=access,
            expires_in=self._ttl_seconds,
            scope=" ".join(scopes),
            refresh_token=refresh,
        )

    @property
    def _ttl_seconds(self) -> int:
        return int(self.config.access_token_ttl.total_seconds())

    async def _mint(
        self,
        client: OAuthClient,
        partner: Partner,
        scopes: list[str],
        *,
        subject: str,
        consent_id: str | None = None,
    ) -> tuple[str, str, datetime]:
        now = self._clock.now()
        expires = now + self.config.access_token_ttl
        jti = secrets.token_urlsafe(18)
        claims: dict[str, Any] = {
            "iss": self.config.issuer,
            "sub": subject,
            "aud": self.config.audience,
            "client_id": client.id,
            "partner_id": partner.id,
            "scope": " ".join(scopes),
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "jti": jti,
            "mode": partner.mode.value,
        }
        if consent_id:
            claims["consent_id"] = consent_id
        return await self._codec.sign(claims), jti, expires

    # -- authorization endpoint (after the PSU approved) ---------------------------------

    async def issue_code(
        self,
        *,
        client_id: str,
        redirect_uri: str,
        scope: str | None,
        code_challenge: str | None,
        code_challenge_method: str | None,
        subject: str,
        consent_id: str | None,
    ) -> str:
        async with self._tx.read() as tx:
            client = await tx.partners.get_client(client_id)
            partner = await tx.partners.get_partner(client.partner_id) if client else None
        if client is None or partner is None or not client.is_active or not partner.is_active:
            raise OAuthError("invalid_client", "Unknown or inactive client.")
        if redirect_uri not in client.redirect_uris:
            raise OAuthError("invalid_request", "redirect_uri is not registered for this client.")
        if consent_id is not None and not _CONSENT_ID.fullmatch(consent_id):
            raise OAuthError("invalid_request", "consent_id is not a valid consent id.")
        try:
            challenge = check_challenge(code_challenge, code_challenge_method)
            allowed = client.effective_scopes(partner) & CONSENT_SCOPES
            scopes = grantable_scopes(parse_scope_string(scope), allowed)
        except InvalidInput as exc:
            error = "invalid_scope" if exc.code == "invalid_scope" else "invalid_request"
            raise OAuthError(error, exc.message) from None
        if not scopes:
            raise OAuthError("invalid_scope", "This client may not request PSU consent.")
        code = secrets.token_urlsafe(32)
        now = self._clock.now()
        async with self._tx.write() as tx:
            await tx.tokens.add_code(
                AuthorizationCode(
                    code_hash=token_hash(code),
                    client_id=client.id,
                    redirect_uri=redirect_uri,
                    scopes=tuple(scopes),
                    code_challenge=challenge,
                    subject=subject,
                    consent_id=consent_id,
                    created_at=now,
                    expires_at=now + self.config.code_ttl,
                    used_at=None,
                    family_id=None,
                )
            )
        return code

    # -- revocation and introspection ----------------------------------------------------

    async def revoke(
        self, token: str, hint: str | None, creds: ClientCredentials, actor: Actor
    ) -> None:
        """RFC 7009: always succeeds for an authenticated client, whatever the token."""
        client, _partner = await self.authenticate_client(creds)
        now = self._clock.now()
        if token.startswith("rt_"):
            async with self._tx.write() as tx:
                stored = await tx.tokens.get_refresh_for_update(token_hash(token))
                if (
                    stored is not None
                    and stored.client_id == client.id
                    and stored.revoked_at is None
                ):
                    await self._revoke_family(tx, stored.family_id, client.id, "revoked")
            return
        # The same reading of the token as the resource endpoints: ours carry client_id,
        # an external issuer's may carry azp instead.
        try:
            context = await self.verify_access_token(token)
        except TokenRejected:
            return  # unknown, expired or already revoked: nothing to do (RFC 7009 §2.2)
        if context.client_id != client.id:
            return
        expires = _expiry(context.claims.get("exp"), now)
        async with self._tx.write() as tx:
            # Concurrent revocations of one token: only the one that records it audits it.
            if await tx.tokens.revoke_jti(
                context.jti, client.id, expires, now, "revoked_by_client"
            ):
                await audit.record(
                    tx,
                    self._clock,
                    actor,
                    "token.revoked",
                    target_type="client",
                    target_id=client.id,
                    payload={"jti": context.jti},
                )

    async def revoke_access_token_by_operator(
        self, actor: Actor, jti: str, client_id: str, expires_at: datetime
    ) -> None:
        now = self._clock.now()
        async with self._tx.write() as tx:
            await tx.tokens.revoke_jti(jti, client_id, expires_at, now, "revoked_by_operator")
            await audit.record(
                tx,
                self._clock,
                actor,
                "token.revoked",
                target_type="client",
                target_id=client_id,
                payload={"jti": jti},
            )

    async def introspect(self, token: str, creds: ClientCredentials) -> dict[str, Any]:
        client, _partner = await self.authenticate_client(creds)
        try:
            context = await self.verify_access_token(token)
        except TokenRejected:
            return {"active": False}
        if context.client_id != client.id:
            return {"active": False}
        claims = context.claims
        return {
            "active": True,
            "scope": " ".join(sorted(context.scopes)),
            "client_id": context.client_id,
            "sub": claims.get("sub"),
            "exp": claims.get("exp"),
            "iat": claims.get("iat"),
            "iss": claims.get("iss"),
            "aud": claims.get("aud"),
            "jti": context.jti,
            "token_type": "Bearer",
        }

    # -- resource-server side -------------------------------------------------------------

    async def verify_access_token(self, token: str) -> AccessContext:
        try:
            claims = await self._codec.verify(token)
        except InvalidToken as exc:
            raise TokenRejected(exc.reason) from None
        client_id = claims.get("client_id") or claims.get("azp")
        jti = claims.get("jti")
        if not isinstance(client_id, str) or not isinstance(jti, str):
            raise TokenRejected("missing_claims")
        client, partner, revoked = await self._access_of(client_id, jti)
        if revoked:
            raise TokenRejected("revoked")
        if client is None or partner is None:
            raise TokenRejected("unknown_client")
        if not client.is_active or not partner.is_active:
            raise TokenRejected("client_inactive")
        raw_scope = claims.get("scope")
        if isinstance(raw_scope, str):
            presented = set(parse_scope_string(raw_scope))
        else:
            scp = claims.get("scp")
            presented = {str(s) for s in scp} if isinstance(scp, list) else set()
        # The same rule for our tokens and an external issuer's: never beyond the roles.
        scopes = frozenset(presented & client.effective_scopes(partner))
        consent = claims.get("consent_id")
        return AccessContext(
            client_id=client.id,
            partner_id=partner.id,
            scopes=scopes,
            subject=str(claims.get("sub", client.id)),
            jti=jti,
            consent_id=consent if isinstance(consent, str) else None,
            mode=partner.mode.value,
            claims=claims,
            partner=partner,
        )

    async def _access_of(
        self, client_id: str, jti: str
    ) -> tuple[OAuthClient | None, Partner | None, bool]:
        """The client, its partner and whether ``jti`` is revoked: from this process's
        cache while the change feed keeps it exact (access_cache.py), else in one query."""
        cache = self._cache
        if cache is None:
            async with self._tx.lookup() as tx:
                return await tx.partners.access_of(client_id, jti)
        if cache.needs_priming:
            await self._prime(cache)
        if cache.ready:
            if cache.is_revoked(self._stored_jti(jti)):
                return None, None, True
            found = cache.client(client_id)
            if found is not None:
                return found[0], found[1], False
        epoch = cache.epoch()
        async with self._tx.lookup() as tx:
            client, partner, revoked = await tx.partners.access_of(client_id, jti)
        if client is not None and partner is not None:
            cache.remember(epoch, client, partner)
        return client, partner, revoked

    async def _prime(self, cache: AccessCache) -> None:
        resets = cache.begin_priming()
        try:
            since = self._clock.now() - timedelta(seconds=FORGET_AFTER_SECONDS)
            async with self._tx.lookup() as tx:
                revoked = await tx.tokens.revocations_since(since)
        except BaseException:
            cache.priming_failed()
            raise
        cache.primed(resets, revoked)
