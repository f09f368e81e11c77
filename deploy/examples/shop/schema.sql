-- A legacy shop schema, the example source database for deploy/examples/rules/shop.
-- Every table has a primary key. Tables whose rules read old values of
-- non-key columns on update have REPLICA IDENTITY FULL.

CREATE TABLE customers (
    id          bigserial PRIMARY KEY,
    email       text        NOT NULL UNIQUE,
    full_name   text        NOT NULL,
    phone       text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- customer-email-changed compares old.email with new.email.
ALTER TABLE customers REPLICA IDENTITY FULL;

CREATE TABLE orders (
    id           bigserial PRIMARY KEY,
    customer_id  bigint      NOT NULL REFERENCES customers (id),
    status       text        NOT NULL DEFAULT 'new',  -- new, paid, shipped, cancelled
    total_cents  bigint      NOT NULL DEFAULT 0,
    currency     char(3)     NOT NULL DEFAULT 'EUR',
    placed_at    timestamptz NOT NULL DEFAULT now()
);
-- order-status-changed reads old.status.
ALTER TABLE orders REPLICA IDENTITY FULL;

CREATE TABLE order_lines (
    order_id     bigint  NOT NULL REFERENCES orders (id),
    line_no      int     NOT NULL,
    sku          text    NOT NULL,
    quantity     int     NOT NULL CHECK (quantity > 0),
    price_cents  bigint  NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE payments (
    id            bigserial PRIMARY KEY,
    order_id      bigint      NOT NULL REFERENCES orders (id),
    amount_cents  bigint      NOT NULL,
    method        text        NOT NULL,  -- card, transfer, voucher
    paid_at       timestamptz NOT NULL DEFAULT now()
);

CREATE PUBLICATION chronicler FOR TABLE customers, orders, order_lines, payments;
