-- The database work of one POST /v1/payments payout, for pgbench (bench/baselines.py runs
-- it with -M prepared, so every :variable is a bound parameter, as asyncpg sends them).
--
-- Written from the statements the server issues for one payout of a merchant that already
-- paid this beneficiary once (captured with a SQLAlchemy cursor hook; every run recaptures
-- them and reports any drift from this file, see "sql_drift" in bench/results/latest.json).
-- The server runs them in one transaction per batch of payouts, each statement covering
-- the whole batch (multi-row INSERTs, executemany); here each transaction is one payout,
-- the database's ceiling for this SQL one payout at a time. The access-token check reads
-- nothing on PostgreSQL while the process's change feed is live (the client is cached),
-- and the audit record goes to the inbox: no shared row is locked.
-- The only statement that is not the server's is the lookup of a random bench merchant in
-- bench_merchants (a helper table the bench fills; primary-key read).
\set m random(0, :merchants - 1)
\set n random(1, 9000000000000000)
\set shard random(0, 7)
SELECT partner_id, client_id, account_id, subject_id, iban_bidx FROM bench_merchants WHERE n = :m \gset
BEGIN;
-- the beneficiaries of the batch, found by blind index, at most 50 per (partner, index) (the blind-index key id is cached by the server)
SELECT anon_1.id, anon_1.partner_id, anon_1.key_id, anon_1.name_enc, anon_1.iban_enc, anon_1.raast_id_enc, anon_1.cnic_enc, anon_1.iban_bidx, anon_1.raast_id_bidx, anon_1.cnic_bidx, anon_1.bank_code, anon_1.iban_last4, anon_1.created_at, anon_1.erased_at FROM (SELECT data_subjects.id AS id, data_subjects.partner_id AS partner_id, data_subjects.key_id AS key_id, data_subjects.name_enc AS name_enc, data_subjects.iban_enc AS iban_enc, data_subjects.raast_id_enc AS raast_id_enc, data_subjects.cnic_enc AS cnic_enc, data_subjects.iban_bidx AS iban_bidx, data_subjects.raast_id_bidx AS raast_id_bidx, data_subjects.cnic_bidx AS cnic_bidx, data_subjects.bank_code AS bank_code, data_subjects.iban_last4 AS iban_last4, data_subjects.created_at AS created_at, data_subjects.erased_at AS erased_at, row_number() OVER (PARTITION BY data_subjects.partner_id, data_subjects.iban_bidx ORDER BY data_subjects.created_at DESC, data_subjects.id DESC) AS rank_in_pair FROM data_subjects WHERE data_subjects.iban_bidx IN (:iban_bidx) AND data_subjects.partner_id IN (:partner_id)) AS anon_1 WHERE anon_1.rank_in_pair <= 50 ORDER BY anon_1.created_at DESC, anon_1.id DESC;
-- the idempotency key, claimed with its (sealed) answer: the batch works the answers out before it writes, claims all its keys in one statement, and writes a key again only when the balance then does not cover its payout
INSERT INTO idempotency_keys (id, client_id, key, request_hash, method, path, status, created_at, locked_until, expires_at, response_status, response_body, response_headers, resource_id) VALUES (CAST(:client_id AS text) || chr(58) || 'pgb-' || CAST(:n AS text), :client_id, 'pgb-' || CAST(:n AS text), '2ea615019c4179a0ca4464fd4d60c6e8f06afaca2cccd868d7c68b4e1328bb9b', 'POST', '/v1/payments', 'completed', now(), NULL, now() + interval '1 day', 201, repeat('x', 1400), '{}', 'pay_pgb' || CAST(:n AS text)) ON CONFLICT DO NOTHING RETURNING idempotency_keys.id;
-- the merchant's balance shards, locked in one fixed order; coverage is decided in Python
SELECT balance_shards.account_id, balance_shards.shard, balance_shards.posted, balance_shards.held FROM balance_shards WHERE balance_shards.account_id IN (:account_id) ORDER BY balance_shards.account_id, balance_shards.shard FOR UPDATE;
-- the hold, the shard it changed, the payment, its transition, the outbox job
INSERT INTO holds (id, account_id, shard, amount, currency, status, created_at, closed_at) VALUES ('pay_pgb' || CAST(:n AS text), :account_id, :shard, 10000, 'PKR', 'active', now(), NULL);
UPDATE balance_shards SET posted=balance_shards.posted, held=(balance_shards.held + 10000) WHERE balance_shards.account_id = :account_id AND balance_shards.shard = :shard;
INSERT INTO payments (id, partner_id, client_id, type, status, amount, currency, counterparty_id, counterparty_kind, bank_code, iban_last4, reference, description, metadata, version, failure_code, failure_message, rail_reference, rail_sequence, submitted_at, expires_at, refunded_amount, parent_id, created_at, updated_at) VALUES ('pay_pgb' || CAST(:n AS text), :partner_id, :client_id, 'payout', 'pending', 10000, 'PKR', :subject_id, 'iban', 'SCBL', '6702', 'pgb-' || CAST(:n AS text), NULL, '{}', 1, NULL, NULL, NULL, 0, NULL, NULL, 0, NULL, now(), now());
INSERT INTO payment_transitions (payment_id, from_status, to_status, version, cause, at) VALUES ('pay_pgb' || CAST(:n AS text), NULL, 'pending', 1, 'created', now()) RETURNING payment_transitions.id;
INSERT INTO outbox (kind, subject_id, payload, status, attempts, run_at, locked_until, locked_by, last_error, created_at, updated_at) VALUES ('rail.submit', 'pay_pgb' || CAST(:n AS text), '{}', 'pending', 0, now(), NULL, NULL, NULL, now(), now()) RETURNING outbox.id;
-- the audit record, to the inbox: the sequencer chains it after commit
INSERT INTO audit_inbox (id, occurred_at, actor_type, actor_id, action, target_type, target_id, source_ip, user_agent, request_id, payload) VALUES ('aud_pgb' || CAST(:n AS text), now(), 'client', :client_id, 'payment.created', 'payment', 'pay_pgb' || CAST(:n AS text), '127.0.0.1', 'wrk', 'req_pgb' || CAST(:n AS text), '{"amount":10000,"currency":"PKR","type":"payout"}');
COMMIT;
