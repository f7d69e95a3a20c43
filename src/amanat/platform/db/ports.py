"""The interfaces services need from the outside world; adapters implement them."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from amanat.identity.domain import OAuthClient, Operator, Partner
from amanat.payments.domain.ledger import Journal
from amanat.payments.domain.payments import Payment
from amanat.platform.audit.domain import Actor, AuditRecord, Seal, StoredRecord
from amanat.webhooks.domain.endpoints import Attempt, Delivery, WebhookEndpoint

if TYPE_CHECKING:
    from amanat.platform.keys.service import SigningKey


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id_hash: str
    operator_id: str
    csrf_token: str
    created_at: datetime
    expires_at: datetime
    idle_expires_at: datetime
    source_ip: str | None
    user_agent: str | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    code_hash: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    code_challenge: str
    subject: str
    consent_id: str | None
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    family_id: str | None


@dataclass(frozen=True, slots=True)
class RefreshToken:
    token_hash: str
    family_id: str
    client_id: str
    scopes: tuple[str, ...]
    subject: str
    consent_id: str | None
    access_jti: str
    access_expires_at: datetime
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Any]
    has_more: bool


class PartnerRepository(Protocol):
    async def add_partner(self, partner: Partner) -> None: ...
    async def get_partner(self, partner_id: str) -> Partner | None: ...
    async def list_partners(self, limit: int, before: tuple[datetime, str] | None) -> Page: ...
    async def set_partner_status(self, partner_id: str, status: str, at: datetime) -> None: ...
    async def set_transaction_limit(
        self, partner_id: str, limit: int | None, at: datetime
    ) -> None: ...
    async def set_rate_limits(
        self, partner_id: str, quotas: Mapping[str, tuple[int, int]], at: datetime
    ) -> None: ...
    async def add_client(self, client: OAuthClient) -> None: ...
    async def get_client(self, client_id: str) -> OAuthClient | None: ...
    async def access_of(
        self, client_id: str, jti: str
    ) -> tuple[OAuthClient | None, Partner | None, bool]: ...
    async def list_clients(self, partner_id: str) -> list[OAuthClient]: ...
    async def set_client_secret(self, client_id: str, secret_hash: str, at: datetime) -> None: ...
    async def rehash_client_secret(self, client_id: str, old_hash: str, new_hash: str) -> bool:
        """The same secret in a newer scheme; False (nothing changed) unless the stored
        hash is still ``old_hash``, so a rotation in the meantime wins."""
        ...

    async def revoke_client(self, client_id: str, at: datetime) -> None: ...


class TokenRepository(Protocol):
    async def revoke_jti(
        self, jti: str, client_id: str | None, expires_at: datetime, at: datetime, reason: str
    ) -> bool:
        """Record the revocation; False if the token was already revoked."""
        ...

    async def is_revoked(self, jti: str) -> bool: ...
    async def add_code(self, code: AuthorizationCode) -> None: ...
    async def get_code_for_update(self, code_hash: str) -> AuthorizationCode | None: ...
    async def mark_code_used(self, code_hash: str, at: datetime, family_id: str) -> None: ...
    async def add_refresh(self, token: RefreshToken) -> None: ...
    async def get_refresh_for_update(self, token_hash: str) -> RefreshToken | None: ...
    async def mark_refresh_used(self, token_hash: str, at: datetime) -> None: ...
    async def revoke_family(self, family_id: str, at: datetime) -> list[RefreshToken]: ...
    async def remember_assertion(self, client_id: str, jti: str, expires_at: datetime) -> bool: ...


class OperatorRepository(Protocol):
    async def add_operator(self, operator: Operator) -> None: ...
    async def get_operator(self, operator_id: str) -> Operator | None: ...
    async def get_operator_by_email(self, email: str) -> Operator | None: ...
    async def list_operators(self) -> list[Operator]: ...
    async def save_login_state(self, operator: Operator) -> None: ...
    async def set_operator_roles(self, operator_id: str, roles: list[str]) -> None: ...
    async def add_session(self, session: SessionRecord) -> None: ...
    async def get_session(self, id_hash: str) -> SessionRecord | None: ...
    async def touch_session(self, id_hash: str, idle_expires_at: datetime) -> None: ...
    async def revoke_session(self, id_hash: str, at: datetime) -> None: ...
    async def revoke_operator_sessions(self, operator_id: str, at: datetime) -> None: ...


class AuditRepository(Protocol):
    async def append(
        self,
        *,
        record_id: str,
        occurred_at: datetime,
        actor: Actor,
        action: str,
        target_type: str | None,
        target_id: str | None,
        payload: dict[str, Any],
    ) -> AuditRecord: ...

    async def append_at_commit(
        self,
        *,
        record_id: str,
        occurred_at: datetime,
        actor: Actor,
        action: str,
        target_type: str | None,
        target_id: str | None,
        payload: dict[str, Any],
    ) -> None: ...
    async def flush(self) -> None: ...
    async def list_records(
        self, limit: int, before_seq: int | None, action: str | None, target_id: str | None
    ) -> Page: ...

    async def stored_records(self, after_seq: int, limit: int) -> list[StoredRecord]: ...
    async def head(self, *, lock: bool = False) -> tuple[int, str]: ...
    async def add_seal(self, seal: Seal) -> None: ...
    async def seals(self, after_seq: int = 0, up_to: int | None = None) -> list[Seal]: ...
    async def latest_seal(self) -> Seal | None: ...


class SigningKeyRepository(Protocol):
    async def list_keys(self) -> list[SigningKey]: ...
    async def add_key(self, key: SigningKey) -> None: ...
    async def set_status(
        self, kid: str, status: str, retire_after: datetime | None, retired_at: datetime | None
    ) -> None: ...


class RetentionRepository(Protocol):
    def supports(self, data_class: str) -> bool: ...
    async def due(
        self, data_class: str, cutoff: datetime, limit: int, exclude: set[str]
    ) -> list[str]: ...
    async def delete(self, data_class: str, ids: list[str]) -> int: ...
    async def held_ids(self, data_class: str) -> set[str]: ...
    async def add_hold(
        self,
        hold_id: str,
        data_class: str,
        target_id: str,
        reason: str,
        created_by: str,
        at: datetime,
    ) -> None: ...
    async def release_hold(self, data_class: str, target_id: str, at: datetime) -> int: ...


class Transaction(Protocol):
    """Repositories bound to one database transaction."""

    @property
    def signing_keys(self) -> SigningKeyRepository: ...
    @property
    def partners(self) -> PartnerRepository: ...
    @property
    def tokens(self) -> TokenRepository: ...
    @property
    def operators(self) -> OperatorRepository: ...
    @property
    def audit(self) -> AuditRepository: ...
    @property
    def data_keys(self) -> DataKeyRepository: ...
    @property
    def subjects(self) -> SubjectRepository: ...
    @property
    def retention(self) -> RetentionRepository: ...
    @property
    def idempotency(self) -> IdempotencyRepository: ...
    @property
    def payments(self) -> PaymentRepository: ...
    @property
    def ledger(self) -> LedgerRepository: ...
    @property
    def outbox(self) -> OutboxRepository: ...
    @property
    def rail_events(self) -> RailEventRepository: ...
    @property
    def events(self) -> EventRepository: ...
    @property
    def webhooks(self) -> WebhookRepository: ...


class TransactionFactory(Protocol):
    def write(self) -> AbstractAsyncContextManager[Transaction]: ...
    def read(self) -> AbstractAsyncContextManager[Transaction]: ...

    def lookup(self) -> AbstractAsyncContextManager[Transaction]:
        """For one read statement: no BEGIN and COMMIT, two round trips fewer than
        :meth:`read`. Never for writes or audit records, nor for several statements that
        must see one snapshot."""
        ...

    def snapshot(self) -> AbstractAsyncContextManager[Transaction]:
        """A read-only transaction whose every statement sees one snapshot (PostgreSQL:
        REPEATABLE READ), for reads that must agree with each other however long they take."""
        ...


class SecretHasher(Protocol):
    async def hash(self, secret: str) -> str: ...
    async def verify(self, hashed: str, secret: str) -> bool: ...
    def needs_rehash(self, hashed: str) -> bool:
        """True if ``hashed`` is in an older scheme or with older parameters."""
        ...


class InvalidToken(Exception):
    """A presented JWT failed verification; ``reason`` is safe to log, never the token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AccessTokenCodec(Protocol):
    async def sign(self, claims: dict[str, Any]) -> str: ...
    async def verify(self, token: str) -> dict[str, Any]: ...
    async def jwks(self) -> dict[str, Any]: ...


class ClientAssertionVerifier(Protocol):
    async def verify(self, assertion: str, client: OAuthClient) -> dict[str, Any]:
        """Check the signature against the client's registered keys; raise InvalidToken."""
        ...


@dataclass(frozen=True, slots=True)
class FieldContext:
    """Where an encrypted value lives; bound into the ciphertext as associated data."""

    table: str
    column: str
    row_id: str


class KeyUnavailable(Exception):
    """The data key is shredded, retired or wrong for this ciphertext."""

    def __init__(self, key_id: str, reason: str = "key shredded or unavailable") -> None:
        super().__init__(f"{key_id}: {reason}")
        self.key_id = key_id
        self.reason = reason


class FieldEncryptor(Protocol):
    @property
    def master_key_id(self) -> str: ...
    async def new_wrapped_key(self, key_id: str) -> str: ...
    async def new_subject_key(self, key_id: str, wrapping_key_id: str) -> str: ...
    def forget(self, key_id: str) -> None: ...
    async def encrypt(self, plaintext: str, *, context: FieldContext, key_id: str) -> str: ...
    async def decrypt(self, ciphertext: str, *, context: FieldContext) -> str: ...
    def key_id_of(self, ciphertext: str) -> str: ...
    async def blind_index(self, key_id: str, kind: str, normalized: str) -> str: ...


@dataclass(frozen=True, slots=True)
class DataKey:
    id: str
    purpose: str
    wrapped_key: str | None
    master_key_id: str
    status: str
    created_at: datetime
    retired_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EncryptedColumn:
    """One column of one table that holds ciphertexts (for rotation and key status)."""

    table: str
    id_column: str
    column: str


class DataKeyRepository(Protocol):
    async def add_key(self, key: DataKey) -> None: ...
    async def get_key(self, key_id: str) -> DataKey | None: ...
    async def keys(self, purpose: str | None = None) -> list[DataKey]: ...
    async def set_status(self, key_id: str, status: str, at: datetime | None) -> None: ...
    async def shred(self, key_id: str, at: datetime) -> None: ...
    async def count_rows(self, column: EncryptedColumn, key_id: str) -> int: ...
    async def rows_with_key(
        self, column: EncryptedColumn, key_id: str, limit: int
    ) -> list[tuple[str, str]]: ...
    async def replace_value(
        self, column: EncryptedColumn, row_id: str, old: str, new: str
    ) -> bool: ...


@dataclass(frozen=True, slots=True)
class SubjectRecord:
    id: str
    partner_id: str
    key_id: str
    name_enc: str | None
    iban_enc: str | None
    raast_id_enc: str | None
    cnic_enc: str | None
    iban_bidx: str | None
    raast_id_bidx: str | None
    cnic_bidx: str | None
    bank_code: str | None
    iban_last4: str | None
    created_at: datetime
    erased_at: datetime | None


class SubjectRepository(Protocol):
    async def add(self, subject: SubjectRecord) -> None: ...
    async def get(self, subject_id: str) -> SubjectRecord | None: ...
    async def find(self, partner_id: str | None, field: str, bidx: str) -> list[SubjectRecord]: ...
    async def mark_erased(self, subject_id: str, at: datetime) -> None: ...


class SealSigner(Protocol):
    @property
    def public_key(self) -> str: ...
    def sign(self, message: bytes) -> str: ...
    def verify(self, public_key: str, message: bytes, signature: str) -> bool: ...


class SealWitness(Protocol):
    """A place outside the database that keeps a copy of every audit seal."""

    name: str

    async def published_up_to(self) -> int | None:
        """The newest seal sequence it holds; None when it cannot tell (send only new)."""
        ...

    async def publish(self, seals: list[Seal]) -> None: ...


class SecretSealer(Protocol):
    """Encrypts a secret for one column of one row under the current fields key."""

    async def seal(self, value: str, *, table: str, column: str, row_id: str) -> str: ...
    async def unseal(self, value: str, *, table: str, column: str, row_id: str) -> str: ...


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    client_id: str
    key: str
    request_hash: str
    method: str
    path: str
    status: str
    response_status: int | None
    response_body: str | None
    response_headers: dict[str, str] | None
    created_at: datetime
    locked_until: datetime | None
    expires_at: datetime


class IdempotencyRepository(Protocol):
    async def try_insert(self, record: IdempotencyRecord) -> bool: ...
    async def get(
        self, client_id: str, key: str, *, for_update: bool
    ) -> IdempotencyRecord | None: ...
    async def take_over(
        self, client_id: str, key: str, expected_lock: datetime | None, new_lock: datetime
    ) -> bool: ...
    async def complete(
        self, client_id: str, key: str, status: int, body: str, headers: dict[str, str]
    ) -> None: ...
    async def release(self, client_id: str, key: str) -> None: ...
    async def delete_expired(self, client_id: str, key: str, now: datetime) -> bool:
        """Remove the key's record if it has expired; whether one was removed."""
        ...


@dataclass(frozen=True, slots=True)
class OutboxJob:
    id: int
    kind: str
    subject_id: str
    payload: dict[str, Any]
    attempts: int


class PaymentRepository(Protocol):
    async def add(
        self, payment: Payment, *, client_id: str | None, parent_id: str | None = None
    ) -> None: ...
    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment | None: ...
    async def save_transition(self, before: Payment, after: Payment, cause: str) -> bool: ...
    async def transitions(self, payment_id: str) -> list[dict[str, Any]]: ...
    async def mark_submitted(self, payment_id: str, at: datetime) -> bool: ...
    async def add_refunded(self, payment_id: str, amount: int, at: datetime) -> bool: ...
    async def return_refunded(self, payment_id: str, amount: int, at: datetime) -> None: ...
    async def list(
        self,
        partner_id: str,
        *,
        types: list[str],
        limit: int,
        before: tuple[datetime, str] | None,
        status: str | None,
        created_gte: datetime | None,
        created_lt: datetime | None,
        parent_id: str | None = None,
    ) -> Page: ...
    async def in_flight_incoming(self, partner_id: str) -> int: ...
    async def unresolved(self, older_than: datetime) -> int: ...
    async def stranded(self, older_than: datetime, limit: int) -> tuple[Payment, ...]:
        """Payments not final, unchanged since ``older_than``, with no pending outbox job."""
        ...

    async def partner_limit(self, partner_id: str) -> int | None: ...


class LedgerRepository(Protocol):
    async def ensure_account(
        self, account_id: str, kind: str, currency: str, shards: int, at: datetime
    ) -> tuple[int, bool]: ...
    async def reserve(
        self,
        account_id: str,
        hold_id: str,
        amount: int,
        currency: str,
        at: datetime,
        *,
        shard_count: int | None = None,
    ) -> int: ...
    async def close_hold(self, hold_id: str, *, post: bool, at: datetime) -> int | None: ...
    async def credit(
        self, account_id: str, amount: int, *, spread: bool, shard_count: int | None = None
    ) -> None: ...
    async def post(self, journal: Journal, at: datetime) -> None: ...
    async def balance(self, account_id: str) -> tuple[int, int]: ...
    async def check(self) -> list[str]: ...


class OutboxRepository(Protocol):
    async def enqueue(
        self, kind: str, subject_id: str, payload: dict[str, Any], run_at: datetime
    ) -> None: ...
    async def claim(
        self, owner: str, now: datetime, lease_until: datetime, limit: int
    ) -> list[OutboxJob]: ...
    async def finish(self, job_id: int, owner: str, now: datetime) -> None: ...
    async def retry(
        self,
        job_id: int,
        owner: str,
        run_at: datetime,
        error: str,
        now: datetime,
        *,
        dead: bool = False,
    ) -> None: ...
    async def pending_count(self, kind: str | None = None) -> int: ...


class RailEventRepository(Protocol):
    async def remember(
        self,
        event_id: str,
        end_to_end_id: str,
        status: str,
        sequence: int,
        outcome: str,
        at: datetime,
    ) -> bool: ...
    async def reject(
        self, rail: str, reason: str, source_ip: str | None, body_sha256: str, at: datetime
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event row: ``sealed_data`` is the object's JSON, encrypted."""

    id: str
    partner_id: str
    type: str
    object_type: str
    object_id: str
    object_version: int | None
    created_at: datetime
    sealed_data: str


@dataclass(frozen=True, slots=True)
class EventFilter:
    types: list[str] | None = None
    object_id: str | None = None
    created_gte: datetime | None = None
    created_lt: datetime | None = None


class EventRepository(Protocol):
    async def add(self, event: StoredEvent) -> None: ...
    async def get(self, event_id: str) -> StoredEvent | None: ...
    async def newest_first(
        self,
        partner_id: str,
        *,
        limit: int,
        before: tuple[datetime, str] | None,
        where: EventFilter,
    ) -> Page: ...
    async def oldest_first(
        self, partner_id: str, *, where: EventFilter, limit: int
    ) -> list[StoredEvent]: ...


@dataclass(frozen=True, slots=True)
class DeliveryFilter:
    status: str | None = None
    event_type: str | None = None
    created_gte: datetime | None = None
    created_lt: datetime | None = None


class WebhookRepository(Protocol):
    async def add_endpoint(self, endpoint: WebhookEndpoint) -> None: ...
    async def get_endpoint(
        self, endpoint_id: str, *, for_update: bool = False
    ) -> WebhookEndpoint | None: ...
    async def list_endpoints(
        self, partner_id: str, *, limit: int, before: tuple[datetime, str] | None
    ) -> Page: ...
    async def subscribed(
        self, partner_id: str, event_type: str, *, include_disabled: bool = False
    ) -> list[WebhookEndpoint]: ...
    async def drop_held(self, endpoint_id: str, older_than: datetime, at: datetime) -> int:
        """Fail the endpoint's pending deliveries queued before ``older_than``."""
        ...

    async def drop_held_of_disabled(self, older_than: datetime, at: datetime) -> int:
        """The same for every endpoint that is disabled now."""
        ...

    async def save_endpoint(self, endpoint: WebhookEndpoint) -> None: ...
    async def delete_endpoint(self, endpoint_id: str, at: datetime) -> None: ...
    async def add_deliveries(self, deliveries: list[Delivery]) -> None: ...
    async def claim(
        self,
        owner: str,
        *,
        now: datetime,
        lease_until: datetime,
        limit: int,
        per_endpoint: int,
        exclude_endpoints: set[str],
    ) -> list[Delivery]: ...
    async def settle(self, delivery: Delivery, attempt: Attempt, owner: str) -> bool: ...
    async def release(self, delivery_id: str, owner: str) -> None: ...
    async def get_delivery(self, delivery_id: str) -> Delivery | None: ...
    async def list_deliveries(
        self,
        endpoint_id: str,
        *,
        limit: int,
        before: tuple[datetime, str] | None,
        where: DeliveryFilter,
    ) -> Page: ...
    async def attempts(self, delivery_ids: list[str]) -> dict[str, list[Attempt]]: ...
    async def any_due(self, now: datetime) -> bool: ...
    async def pending_count(self) -> int: ...


class FailureLockout(Protocol):
    """Counts failures per key in a shared store and says when a key is locked out.

    Used for operator sign-in per (email, source IP), for emails with and without an
    account alike (an attacker learns nothing from 423, and locks out only its address).
    """

    async def is_locked(self, key: str) -> bool: ...
    async def record_failure(self, key: str) -> bool:
        """Count one failure; True when ``key`` is locked out from now on."""
        ...

    async def lock(self, key: str) -> None:
        """Lock ``key`` out now, whatever its count."""
        ...

    async def seconds_left(self, key: str) -> int:
        """Seconds (at least 1) until ``key``'s lockout, if any, ends."""
        ...
