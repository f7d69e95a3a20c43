-- The database work of one POST /v1/payments payout, for pgbench (bench/baselines.py runs
-- it with -M prepared, so every :variable is a bound parameter, as asyncpg sends them).
--
-- Written from the statements the server issues for one payout of a merchant that already
-- paid this beneficiary once (captured with a SQLAlchemy cursor hook; every run recaptures
-- them and reports any drift from this file, see "sql_drift" in bench/results/latest.json).
-- The server spreads them over three transactions (token check, idempotency record,
-- payout); here they run in one, in the same order, as the database's own ceiling.
-- The only statement that is not the server's is the lookup of a random bench merchant in
-- bench_merchants (a helper table the bench fills; primary-key read).
\set m random(0, :merchants - 1)
\set n random(1, 9000000000000000)
\set shard random(0, 7)
SELECT partner_id, client_id, account_id, subject_id, iban_bidx FROM bench_merchants WHERE n = :m \gset
BEGIN;
-- verify_access_token: the client, its partner, and whether the token is revoked
SELECT oauth_clients.id, oauth_clients.partner_id, oauth_clients.name, oauth_clients.auth_method, oauth_clients.secret_hash, oauth_clients.jwks, oauth_clients.jwks_uri, oauth_clients.redirect_uris, oauth_clients.allowed_scopes, oauth_clients.status, oauth_clients.created_at, oauth_clients.secret_rotated_at, oauth_clients.revoked_at, partners.id AS id_1, partners.name AS name_1, partners.roles, partners.mode, partners.status AS status_1, partners.per_transaction_limit, partners.created_at AS created_at_1, partners.updated_at, EXISTS (SELECT * FROM revoked_tokens WHERE revoked_tokens.jti = 'jti-' || CAST(:n AS text)) AS revoked FROM oauth_clients JOIN partners ON partners.id = oauth_clients.partner_id WHERE oauth_clients.id = :client_id;
-- run_idempotent: a completed record for this key? (a replay is answered from it; the
-- server runs this lookup outside any transaction) Then the in-progress record (an
-- expired one is deleted only on conflict)
SELECT idempotency_keys.id, idempotency_keys.client_id, idempotency_keys.key, idempotency_keys.request_hash, idempotency_keys.method, idempotency_keys.path, idempotency_keys.status, idempotency_keys.response_status, idempotency_keys.response_body, idempotency_keys.response_headers, idempotency_keys.created_at, idempotency_keys.locked_until, idempotency_keys.expires_at FROM idempotency_keys WHERE idempotency_keys.id = CAST(:client_id AS text) || chr(58) || 'pgb-' || CAST(:n AS text);
INSERT INTO idempotency_keys (id, client_id, key, request_hash, method, path, status, created_at, locked_until, expires_at) VALUES (CAST(:client_id AS text) || chr(58) || 'pgb-' || CAST(:n AS text), :client_id, 'pgb-' || CAST(:n AS text), '2ea615019c4179a0ca4464fd4d60c6e8f06afaca2cccd868d7c68b4e1328bb9b', 'POST', '/v1/payments', 'in_progress', now(), now() + interval '30 seconds', now() + interval '1 day') ON CONFLICT DO NOTHING;
-- the beneficiary, found by blind index (the blind-index key id is cached by the server)
SELECT data_subjects.id, data_subjects.partner_id, data_subjects.key_id, data_subjects.name_enc, data_subjects.iban_enc, data_subjects.raast_id_enc, data_subjects.cnic_enc, data_subjects.iban_bidx, data_subjects.raast_id_bidx, data_subjects.cnic_bidx, data_subjects.bank_code, data_subjects.iban_last4, data_subjects.created_at, data_subjects.erased_at FROM data_subjects WHERE data_subjects.iban_bidx = :iban_bidx AND data_subjects.partner_id = :partner_id ORDER BY data_subjects.created_at DESC LIMIT 50;
-- the payout: hold (the limit came with the token check; the account's shard count is
-- cached by the server), payment, transition, outbox job
UPDATE balance_shards SET held=(balance_shards.held + 10000) WHERE balance_shards.account_id = :account_id AND balance_shards.shard = :shard AND balance_shards.posted - balance_shards.held >= 10000;
INSERT INTO holds (id, account_id, shard, amount, currency, status, created_at, closed_at) VALUES ('pay_pgb' || CAST(:n AS text), :account_id, :shard, 10000, 'PKR', 'active', now(), NULL);
INSERT INTO payments (id, partner_id, client_id, type, status, amount, currency, counterparty_id, counterparty_kind, bank_code, iban_last4, reference, description, metadata, version, failure_code, failure_message, rail_reference, rail_sequence, submitted_at, expires_at, refunded_amount, parent_id, created_at, updated_at) VALUES ('pay_pgb' || CAST(:n AS text), :partner_id, :client_id, 'payout', 'pending', 10000, 'PKR', :subject_id, 'iban', 'SCBL', '6702', 'pgb-' || CAST(:n AS text), NULL, '{}', 1, NULL, NULL, NULL, 0, NULL, NULL, 0, NULL, now(), now());
INSERT INTO payment_transitions (payment_id, from_status, to_status, version, cause, at) VALUES ('pay_pgb' || CAST(:n AS text), NULL, 'pending', 1, 'created', now()) RETURNING payment_transitions.id;
INSERT INTO outbox (kind, subject_id, payload, status, attempts, run_at, locked_until, locked_by, last_error, created_at, updated_at) VALUES ('rail.submit', 'pay_pgb' || CAST(:n AS text), '{}', 'pending', 0, now(), NULL, NULL, NULL, now(), now()) RETURNING outbox.id;
-- the idempotency record completes with the (sealed) response
SELECT data_keys.id, data_keys.purpose, data_keys.wrapped_key, data_keys.master_key_id, data_keys.status, data_keys.created_at, data_keys.retired_at FROM data_keys WHERE data_keys.purpose = 'fields' ORDER BY data_keys.created_at, data_keys.id;
UPDATE idempotency_keys SET status='completed', response_status=201, response_body=repeat('x', 1400), response_headers='{}', locked_until=NULL WHERE idempotency_keys.id = CAST(:client_id AS text) || chr(58) || 'pgb-' || CAST(:n AS text);
-- the audit record, last: the chain head is locked until COMMIT
SELECT audit_head.seq AS head_seq, audit_head.hash AS head_hash FROM audit_head WHERE audit_head.id = 1 FOR UPDATE \gset
INSERT INTO audit_log (seq, id, occurred_at, actor_type, actor_id, action, target_type, target_id, source_ip, user_agent, request_id, payload, prev_hash, hash) VALUES (CAST(:head_seq AS bigint) + 1, 'aud_pgb' || CAST(:n AS text), now(), 'client', :client_id, 'payment.created', 'payment', 'pay_pgb' || CAST(:n AS text), '127.0.0.1', 'wrk', 'req_pgb' || CAST(:n AS text), '{"amount":10000,"currency":"PKR","type":"payout"}', :head_hash, md5('aud' || CAST(:n AS text)) || md5(CAST(:head_hash AS text)));
UPDATE audit_head SET seq=CAST(:head_seq AS bigint) + 1, hash=md5('aud' || CAST(:n AS text)) || md5(CAST(:head_hash AS text)) WHERE audit_head.id = 1;
COMMIT;
