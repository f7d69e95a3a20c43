-- A payment-shaped transaction for pgbench: the rows one payout writes (idempotency
-- record, hold, payment, transition, outbox job), five INSERTs and one COMMIT, into the
-- scratch tables of payment_shaped.setup.sql. No row is shared between transactions: no
-- balance to update, no audit-chain head, no lookup. This is what PostgreSQL does for a
-- payment when nothing serialises the writers: the ceiling a lock-free payout path aims
-- at (the "ratio to a payment-shaped pgbench transaction" target). bench/baselines.py
-- runs it with -M prepared and the same connections as the payout load.
\set n random(1, 9000000000000000)
\set shard random(0, 7)
\set m random(0, 999)
BEGIN;
INSERT INTO bench_pay_idempotency (id, client_id, key, request_hash, method, path, status, response_status, response_body, created_at, locked_until, expires_at) VALUES ('cli_' || CAST(:m AS text) || chr(58) || 'psh-' || CAST(:n AS text), 'cli_' || CAST(:m AS text), 'psh-' || CAST(:n AS text), '2ea615019c4179a0ca4464fd4d60c6e8f06afaca2cccd868d7c68b4e1328bb9b', 'POST', '/v1/payments', 'completed', 201, repeat('x', 1400), now(), NULL, now() + interval '1 day');
INSERT INTO bench_pay_holds (id, account_id, shard, amount, currency, status, created_at, closed_at) VALUES ('pay_psh' || CAST(:n AS text), 'merchant' || chr(58) || 'par_' || CAST(:m AS text), :shard, 10000, 'PKR', 'active', now(), NULL);
INSERT INTO bench_pay_payments (id, partner_id, client_id, type, status, amount, currency, counterparty_id, bank_code, iban_last4, reference, metadata, version, created_at, updated_at) VALUES ('pay_psh' || CAST(:n AS text), 'par_' || CAST(:m AS text), 'cli_' || CAST(:m AS text), 'payout', 'pending', 10000, 'PKR', 'sub_' || CAST(:m AS text), 'SCBL', '6702', 'psh-' || CAST(:n AS text), '{}', 1, now(), now());
INSERT INTO bench_pay_transitions (payment_id, from_status, to_status, version, cause, at) VALUES ('pay_psh' || CAST(:n AS text), NULL, 'pending', 1, 'created', now());
INSERT INTO bench_pay_outbox (kind, subject_id, payload, status, attempts, run_at, created_at, updated_at) VALUES ('rail.submit', 'pay_psh' || CAST(:n AS text), '{}', 'pending', 0, now(), now(), now());
COMMIT;
