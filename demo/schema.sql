-- A small shop API's database: users, products, orders.
-- orders.user_id and orders.status have no index: the demo shows what
-- that costs an API under load.
CREATE TABLE users (
    id         bigint PRIMARY KEY,
    email      text NOT NULL UNIQUE,
    name       text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE products (
    id    int PRIMARY KEY,
    name  text NOT NULL,
    price numeric(10, 2) NOT NULL
);
CREATE TABLE orders (
    id         bigserial PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users,
    product_id int NOT NULL REFERENCES products,
    status     text NOT NULL,
    quantity   int NOT NULL,
    created_at timestamptz NOT NULL
);

INSERT INTO users
SELECT g, 'user' || g || '@example.com', 'User ' || g,
       now() - (g % 1000) * interval '1 hour'
  FROM generate_series(1, 20000) g;
INSERT INTO products
SELECT g, 'Product ' || g, (g % 97) + 0.99 FROM generate_series(1, 500) g;
INSERT INTO orders (user_id, product_id, status, quantity, created_at)
SELECT 1 + (g::bigint * 7919) % 20000, 1 + g % 500,
       (ARRAY['new', 'paid', 'shipped', 'delivered'])[1 + g % 4],
       1 + g % 3, now() - (g % 5000) * interval '1 minute'
  FROM generate_series(1, 300000) g;
VACUUM ANALYZE;
