-- The database work of one POST /v1/payments payout on SQLite: the statements of
-- payout.pgbench.sql in SQLite's spelling, run by bench/baselines.py with Python's sqlite3
-- on one connection with the server's pragmas (WAL, synchronous=FULL, foreign keys) and
-- BEGIN IMMEDIATE, since SQLite takes one writer at a time. :names are bound parameters
-- the runner computes per transaction; "-- @gset" stores the next row in them.
-- @gset
SELECT partner_id, client_id, account_id, subject_id, iban_bidx FROM bench_merchants WHERE n = :m;
BEGIN IMMEDIATE;
SELECT oauth_clients.id, oauth_clients.partner_id, oauth_clients.name, oauth_clients.auth_method, oauth_clients.secret_hash, oauth_clients.jwks, oauth_clients.jwks_uri, oauth_clients.redirect_uris, oauth_clients.allowed_scopes, oauth_clients.status, oauth_clients.created_at, oauth_clients.secret_rotated_at, oauth_clients.revoked_at, partners.id AS id_1, partners.name AS name_1, partners.roles, partners.mode, partners.status AS status_1, partners.per_transaction_limit, partners.created_at AS created_at_1, partners.updated_at, EXISTS (SELECT * FROM revoked_tokens WHERE revoked_tokens.jti = :jti) AS revoked FROM oauth_clients JOIN partners ON partners.id = oauth_clients.partner_id WHERE oauth_clients.id = :client_id;
SELECT idempotency_keys.id, idempotency_keys.client_id, idempotency_keys.key, idempotency_keys.request_hash, idempotency_keys.method, idempotency_keys.path, idempotency_keys.status, idempotency_keys.response_status, idempotency_keys.response_body, idempotency_keys.response_headers, idempotency_keys.created_at, idempotency_keys.locked_until, idempotency_keys.expires_at FROM idempotency_keys WHERE idempotency_keys.id = :client_id || ':' || :key;
INSERT INTO idempotency_keys (id, client_id, key, request_hash, method, path, status, created_at, locked_until, expires_at) VALUES (:client_id || ':' || :key, :client_id, :key, '2ea615019c4179a0ca4464fd4d60c6e8f06afaca2cccd868d7c68b4e1328bb9b', 'POST', '/v1/payments', 'in_progress', :now, :lock_until, :expires) ON CONFLICT DO NOTHING;
SELECT data_subjects.id, data_subjects.partner_id, data_subjects.key_id, data_subjects.name_enc, data_subjects.iban_enc, data_subjects.raast_id_enc, data_subjects.cnic_enc, data_subjects.iban_bidx, data_subjects.raast_id_bidx, data_subjects.cnic_bidx, data_subjects.bank_code, data_subjects.iban_last4, data_subjects.created_at, data_subjects.erased_at FROM data_subjects WHERE data_subjects.iban_bidx = :iban_bidx AND data_subjects.partner_id = :partner_id ORDER BY data_subjects.created_at DESC LIMIT 50;
SELECT partners.per_transaction_limit FROM partners WHERE partners.id = :partner_id;
UPDATE balance_shards SET held=(balance_shards.held + 10000) WHERE balance_shards.account_id = :account_id AND balance_shards.shard = :shard AND balance_shards.posted - balance_shards.held >= 10000;
INSERT INTO holds (id, account_id, shard, amount, currency, status, created_at, closed_at) VALUES (:payment_id, :account_id, :shard, 10000, 'PKR', 'active', :now, NULL);
INSERT INTO payments (id, partner_id, client_id, type, status, amount, currency, counterparty_id, counterparty_kind, bank_code, iban_last4, reference, description, metadata, version, failure_code, failure_message, rail_reference, rail_sequence, submitted_at, expires_at, refunded_amount, parent_id, created_at, updated_at) VALUES (:payment_id, :partner_id, :client_id, 'payout', 'pending', 10000, 'PKR', :subject_id, 'iban', 'SCBL', '6702', :key, NULL, '{}', 1, NULL, NULL, NULL, 0, NULL, NULL, 0, NULL, :now, :now);
INSERT INTO payment_transitions (payment_id, from_status, to_status, version, cause, at) VALUES (:payment_id, NULL, 'pending', 1, 'created', :now) RETURNING payment_transitions.id;
INSERT INTO outbox (kind, subject_id, payload, status, attempts, run_at, locked_until, locked_by, last_error, created_at, updated_at) VALUES ('rail.submit', :payment_id, '{}', 'pending', 0, :now, NULL, NULL, NULL, :now, :now) RETURNING outbox.id;
SELECT data_keys.id, data_keys.purpose, data_keys.wrapped_key, data_keys.master_key_id, data_keys.status, data_keys.created_at, data_keys.retired_at FROM data_keys WHERE data_keys.purpose = 'fields' ORDER BY data_keys.created_at, data_keys.id;
UPDATE idempotency_keys SET status='completed', response_status=201, response_body=:body, response_headers='{}', locked_until=NULL WHERE idempotency_keys.id = :client_id || ':' || :key;
-- @gset
SELECT audit_head.seq AS head_seq, audit_head.hash AS head_hash FROM audit_head WHERE audit_head.id = 1;
INSERT INTO audit_log (seq, id, occurred_at, actor_type, actor_id, action, target_type, target_id, source_ip, user_agent, request_id, payload, prev_hash, hash) VALUES (:head_seq + 1, :audit_id, :now, 'client', :client_id, 'payment.created', 'payment', :payment_id, '127.0.0.1', 'wrk', :request_id, '{"amount":10000,"currency":"PKR","type":"payout"}', :head_hash, :new_hash);
UPDATE audit_head SET seq=:head_seq + 1, hash=:new_hash WHERE audit_head.id = 1;
COMMIT;
