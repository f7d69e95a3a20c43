-- The scratch tables of the payment-shaped baseline (bench/sql/payment_shaped.pgbench.sql):
-- the rows one payout writes, with their keys and secondary indexes, and nothing shared
-- between two payouts (no balance row, no chain head, no foreign key to a common row).
-- Created before the baseline runs and dropped after it (bench/baselines.py).
DROP TABLE IF EXISTS bench_pay_idempotency, bench_pay_holds, bench_pay_payments, bench_pay_transitions, bench_pay_outbox;
CREATE TABLE bench_pay_idempotency (id TEXT PRIMARY KEY, client_id TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL, status TEXT NOT NULL, response_status INTEGER, response_body TEXT, created_at TIMESTAMPTZ NOT NULL, locked_until TIMESTAMPTZ, expires_at TIMESTAMPTZ NOT NULL);
CREATE INDEX bench_pay_idempotency_expires ON bench_pay_idempotency (expires_at);
CREATE TABLE bench_pay_holds (id TEXT PRIMARY KEY, account_id TEXT NOT NULL, shard INTEGER NOT NULL, amount BIGINT NOT NULL, currency TEXT NOT NULL, status TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL, closed_at TIMESTAMPTZ);
CREATE INDEX bench_pay_holds_account ON bench_pay_holds (account_id, status);
CREATE TABLE bench_pay_payments (id TEXT PRIMARY KEY, partner_id TEXT NOT NULL, client_id TEXT, type TEXT NOT NULL, status TEXT NOT NULL, amount BIGINT NOT NULL, currency TEXT NOT NULL, counterparty_id TEXT, bank_code TEXT, iban_last4 TEXT, reference TEXT, metadata TEXT NOT NULL, version INTEGER NOT NULL, created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL);
CREATE INDEX bench_pay_payments_partner_created ON bench_pay_payments (partner_id, created_at, id);
CREATE INDEX bench_pay_payments_status ON bench_pay_payments (status);
CREATE TABLE bench_pay_transitions (id BIGSERIAL PRIMARY KEY, payment_id TEXT NOT NULL, from_status TEXT, to_status TEXT NOT NULL, version INTEGER NOT NULL, cause TEXT NOT NULL, at TIMESTAMPTZ NOT NULL);
CREATE INDEX bench_pay_transitions_payment ON bench_pay_transitions (payment_id);
CREATE TABLE bench_pay_outbox (id BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL, subject_id TEXT NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL, run_at TIMESTAMPTZ NOT NULL, created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL);
CREATE INDEX bench_pay_outbox_due ON bench_pay_outbox (status, run_at);
