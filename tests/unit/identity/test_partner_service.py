"""PartnerService's rules against in-memory fakes (amanat.identity.fakes): partners, their
clients' secrets and scopes, limits and status, each change audited with it, each refusal
leaving everything as it was. Over a database: tests/api/identity."""

from __future__ import annotations

import pytest

from amanat.identity.access import OPT_IN_SCOPES, ROLE_SCOPES, PartnerRole
from amanat.identity.domain import ClientAuthMethod, Partner
from amanat.identity.fakes import FakeIdentity, fake_identity
from amanat.kernel.errors import Conflict, InvalidInput, NotFound
from amanat.platform.audit.domain import Actor

OPERATOR = Actor("operator", "operator_1")
PUBLIC_JWKS = {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "abc", "kid": "k1"}]}


@pytest.fixture
def identity() -> FakeIdentity:
    return fake_identity()


async def merchant(identity: FakeIdentity, mode: str = "sandbox") -> Partner:
    return await identity.partners.create_partner(
        OPERATOR, name="  Acme Traders ", roles=["merchant"], mode=mode
    )


def actions(identity: FakeIdentity) -> list[str]:
    return identity.database.audit_log.actions


# -- partners -----------------------------------------------------------------------------


async def test_a_new_partner_is_stored_and_audited_together(identity: FakeIdentity) -> None:
    partner = await merchant(identity)
    assert (partner.name, partner.status, partner.roles) == (
        "Acme Traders",
        "active",
        frozenset({PartnerRole.MERCHANT}),
    )
    assert identity.store.partners[partner.id] == partner
    [record] = identity.database.audit_log.records
    assert (record.record.action, record.record.target_id) == ("partner.created", partner.id)
    assert record.record.payload == {
        "name": "Acme Traders",
        "mode": "sandbox",
        "roles": ["merchant"],
    }


@pytest.mark.parametrize(
    ("name", "roles", "mode", "code"),
    [
        ("   ", ["merchant"], "sandbox", "validation_error"),
        ("Acme", [], "sandbox", "invalid_role"),
        ("Acme", ["banker"], "sandbox", "invalid_role"),
        ("Acme", ["merchant"], "staging", "validation_error"),
    ],
)
async def test_a_malformed_partner_is_refused_and_nothing_is_stored(
    identity: FakeIdentity, name: str, roles: list[str], mode: str, code: str
) -> None:
    with pytest.raises(InvalidInput) as refused, identity.database.unchanged():
        await identity.partners.create_partner(OPERATOR, name=name, roles=roles, mode=mode)
    assert refused.value.code == code


# -- clients ------------------------------------------------------------------------------


async def test_a_client_secret_is_shown_once_and_stored_only_as_a_hash(
    identity: FakeIdentity,
) -> None:
    partner = await merchant(identity)
    issued = await identity.partners.create_client(OPERATOR, partner.id, name="backend")

    assert issued.secret is not None and issued.secret.startswith("cs_")
    stored = identity.store.clients[issued.client.id]
    assert stored.secret_hash is not None and issued.secret not in stored.secret_hash
    assert await identity.hasher.verify(stored.secret_hash, issued.secret)
    assert issued.secret not in repr(identity.database.audit_log.records)
    assert actions(identity)[-1] == "client.created"


async def test_by_default_a_client_gets_its_roles_scopes_but_never_the_opt_in_ones(
    identity: FakeIdentity,
) -> None:
    partner = await merchant(identity)
    issued = await identity.partners.create_client(OPERATOR, partner.id, name="backend")
    expected = ROLE_SCOPES[PartnerRole.MERCHANT] - OPT_IN_SCOPES
    assert issued.client.allowed_scopes == expected
    opted = await identity.partners.create_client(
        OPERATOR, partner.id, name="support", scopes=["customers:reveal"]
    )
    assert opted.client.allowed_scopes == {"customers:reveal"}


async def test_a_scope_beyond_the_partners_roles_is_refused(identity: FakeIdentity) -> None:
    partner = await merchant(identity)
    for scope, words in (("accounts", "not allowed"), ("root", "Unknown scope")):
        with pytest.raises(InvalidInput, match=words), identity.database.unchanged():
            await identity.partners.create_client(OPERATOR, partner.id, name="x", scopes=[scope])


async def test_clients_only_for_an_existing_active_partner(identity: FakeIdentity) -> None:
    with pytest.raises(NotFound), identity.database.unchanged():
        await identity.partners.create_client(OPERATOR, "partner_nobody", name="x")
    partner = await merchant(identity)
    await identity.partners.set_partner_status(OPERATOR, partner.id, "suspended")
    with pytest.raises(Conflict, match="suspended"), identity.database.unchanged():
        await identity.partners.create_client(OPERATOR, partner.id, name="x")


@pytest.mark.parametrize(
    ("mode", "uri", "ok"),
    [
        ("sandbox", "https://acme.test/callback", True),
        ("sandbox", "http://127.0.0.1:8080/callback", True),
        ("production", "http://127.0.0.1:8080/callback", False),
        ("sandbox", "http://acme.test/callback", False),
        ("sandbox", "https://acme.test/callback#frag", False),
        ("sandbox", "/callback", False),
    ],
)
async def test_redirect_uris_are_https_except_loopback_in_sandbox(
    identity: FakeIdentity, mode: str, uri: str, ok: bool
) -> None:
    partner = await merchant(identity, mode)
    if ok:
        issued = await identity.partners.create_client(
            OPERATOR, partner.id, name="web", redirect_uris=[uri]
        )
        assert issued.client.redirect_uris == (uri,)
        return
    with pytest.raises(InvalidInput, match="Redirect URI"), identity.database.unchanged():
        await identity.partners.create_client(OPERATOR, partner.id, name="web", redirect_uris=[uri])


async def test_a_private_key_jwt_client_has_public_keys_and_no_secret(
    identity: FakeIdentity,
) -> None:
    partner = await merchant(identity)
    method = ClientAuthMethod.PRIVATE_KEY_JWT.value
    issued = await identity.partners.create_client(
        OPERATOR, partner.id, name="jwt", auth_method=method, jwks=PUBLIC_JWKS
    )
    assert (issued.secret, issued.client.secret_hash) == (None, None)
    private = {"keys": [{**PUBLIC_JWKS["keys"][0], "d": "secret"}]}
    for jwks, jwks_uri in ((None, None), (private, None), (None, "http://acme.test/jwks")):
        with pytest.raises(InvalidInput), identity.database.unchanged():
            await identity.partners.create_client(
                OPERATOR, partner.id, name="jwt", auth_method=method, jwks=jwks, jwks_uri=jwks_uri
            )
    with pytest.raises(Conflict, match="no secret"), identity.database.unchanged():
        await identity.partners.rotate_client_secret(OPERATOR, issued.client.id)


async def test_rotating_a_secret_retires_the_old_one(identity: FakeIdentity) -> None:
    partner = await merchant(identity)
    first = await identity.partners.create_client(OPERATOR, partner.id, name="backend")
    identity.clock.advance(60)
    second = await identity.partners.rotate_client_secret(OPERATOR, first.client.id)

    assert first.secret and second.secret and second.secret != first.secret
    stored = identity.store.clients[first.client.id]
    assert stored.secret_hash is not None
    assert await identity.hasher.verify(stored.secret_hash, second.secret)
    assert not await identity.hasher.verify(stored.secret_hash, first.secret)
    assert stored.secret_rotated_at == identity.clock.now()
    assert second.client == stored
    assert actions(identity)[-1] == "client.secret_rotated"


async def test_revoking_twice_changes_and_audits_once(identity: FakeIdentity) -> None:
    partner = await merchant(identity)
    issued = await identity.partners.create_client(OPERATOR, partner.id, name="backend")
    revoked = await identity.partners.revoke_client(OPERATOR, issued.client.id)
    assert (revoked.status, revoked.revoked_at) == ("revoked", identity.clock.now())
    with identity.database.unchanged():
        assert await identity.partners.revoke_client(OPERATOR, issued.client.id) == revoked
    assert actions(identity).count("client.revoked") == 1
    with pytest.raises(Conflict, match="revoked"), identity.database.unchanged():
        await identity.partners.rotate_client_secret(OPERATOR, issued.client.id)


async def test_a_client_that_cannot_be_stored_leaves_no_audit_record(
    identity: FakeIdentity, monkeypatch: pytest.MonkeyPatch
) -> None:
    partner = await merchant(identity)

    async def broken(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(identity.store, "add_client", broken)
    with pytest.raises(RuntimeError), identity.database.unchanged():
        await identity.partners.create_client(OPERATOR, partner.id, name="backend")


# -- limits and status --------------------------------------------------------------------


async def test_the_transaction_limit_is_set_restored_and_audited(identity: FakeIdentity) -> None:
    partner = await merchant(identity)
    await identity.partners.set_transaction_limit(OPERATOR, partner.id, 250_000)
    assert identity.store.partners[partner.id].per_transaction_limit == 250_000
    await identity.partners.set_transaction_limit(OPERATOR, partner.id, None)
    assert identity.store.partners[partner.id].per_transaction_limit is None
    limits = [
        r.record.payload
        for r in identity.database.audit_log.records
        if r.record.action == "partner.limit_changed"
    ]
    assert limits == [{"per_transaction_limit": 250_000}, {"per_transaction_limit": None}]


@pytest.mark.parametrize("limit", [0, -1])
async def test_a_limit_must_be_positive(identity: FakeIdentity, limit: int) -> None:
    partner = await merchant(identity)
    with pytest.raises(InvalidInput), identity.database.unchanged():
        await identity.partners.set_transaction_limit(OPERATOR, partner.id, limit)


async def test_a_limit_for_an_unknown_partner_names_at_most_40_characters(
    identity: FakeIdentity,
) -> None:
    with pytest.raises(NotFound) as refused, identity.database.unchanged():
        await identity.partners.set_transaction_limit(OPERATOR, "p" * 500, 1)
    assert "p" * 41 not in str(refused.value)


async def test_a_rate_limit_replaces_one_policy_and_records_the_previous(
    identity: FakeIdentity,
) -> None:
    partner = await merchant(identity)
    await identity.partners.set_rate_limit(OPERATOR, partner.id, "read", (100, 60))
    await identity.partners.set_rate_limit(OPERATOR, partner.id, "write", (10, 60))
    changed = await identity.partners.set_rate_limit(OPERATOR, partner.id, "read", (200, 60))
    assert changed.rate_limits == {"read": (200, 60), "write": (10, 60)}
    assert identity.store.partners[partner.id].rate_limits == changed.rate_limits
    assert identity.database.audit_log.records[-1].record.payload == {
        "policy": "read",
        "from": [100, 60],
        "to": [200, 60],
    }
    restored = await identity.partners.set_rate_limit(OPERATOR, partner.id, "read", None)
    assert restored.rate_limits == {"write": (10, 60)}


@pytest.mark.parametrize(
    ("policy", "quota"),
    [("admin", (1, 1)), ("read", (0, 60)), ("read", (10, 0)), ("read", (10, 86_401))],
)
async def test_a_malformed_rate_limit_is_refused(
    identity: FakeIdentity, policy: str, quota: tuple[int, int]
) -> None:
    partner = await merchant(identity)
    with pytest.raises(InvalidInput), identity.database.unchanged():
        await identity.partners.set_rate_limit(OPERATOR, partner.id, policy, quota)


async def test_a_partner_is_suspended_and_reactivated(identity: FakeIdentity) -> None:
    partner = await merchant(identity)
    identity.clock.advance(5)
    suspended = await identity.partners.set_partner_status(OPERATOR, partner.id, "suspended")
    assert (suspended.status, suspended.updated_at) == ("suspended", identity.clock.now())
    active = await identity.partners.set_partner_status(OPERATOR, partner.id, "active")
    assert active.is_active
    assert actions(identity)[-2:] == ["partner.suspended", "partner.active"]
    with pytest.raises(InvalidInput), identity.database.unchanged():
        await identity.partners.set_partner_status(OPERATOR, partner.id, "deleted")
    with pytest.raises(NotFound), identity.database.unchanged():
        await identity.partners.set_partner_status(OPERATOR, "partner_nobody", "active")
