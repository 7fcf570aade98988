-- The demo shop: run once by the `shop` connector when its SQLite database has no table yet
-- (.junction/shop.db). Delete that file to start over.

CREATE TABLE customers (
  id         INTEGER PRIMARY KEY,
  name       TEXT NOT NULL,
  email      TEXT NOT NULL UNIQUE,
  city       TEXT NOT NULL,
  created_at TEXT NOT NULL
);

CREATE TABLE products (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL,
  price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
  stock       INTEGER NOT NULL CHECK (stock >= 0)
);

CREATE TABLE orders (
  id          INTEGER PRIMARY KEY,
  customer_id INTEGER NOT NULL REFERENCES customers (id),
  status      TEXT NOT NULL CHECK (status IN ('placed', 'shipped', 'delivered', 'cancelled')),
  placed_at   TEXT NOT NULL
);

CREATE TABLE order_items (
  order_id   INTEGER NOT NULL REFERENCES orders (id),
  product_id INTEGER NOT NULL REFERENCES products (id),
  quantity   INTEGER NOT NULL CHECK (quantity > 0),
  PRIMARY KEY (order_id, product_id)
);

-- Money moves between accounts in one transaction (Mutation.transfer); a balance never goes
-- below zero.
CREATE TABLE accounts (
  id            INTEGER PRIMARY KEY,
  owner         TEXT NOT NULL,
  balance_cents INTEGER NOT NULL CONSTRAINT balance_not_negative CHECK (balance_cents >= 0)
);

INSERT INTO customers (id, name, email, city, created_at) VALUES
  (1, 'Ada Lovelace', 'ada@example.com', 'London', '2026-01-04T09:12:00Z'),
  (2, 'Grace Hopper', 'grace@example.com', 'New York', '2026-01-11T14:30:00Z'),
  (3, 'Alan Turing', 'alan@example.com', 'Manchester', '2026-02-02T08:05:00Z'),
  (4, 'Katherine Johnson', 'katherine@example.com', 'Hampton', '2026-02-19T17:45:00Z'),
  (5, 'Edsger Dijkstra', 'edsger@example.com', 'Eindhoven', '2026-03-07T10:20:00Z'),
  (6, 'Barbara Liskov', 'barbara@example.com', 'Boston', '2026-03-22T12:00:00Z'),
  (7, 'Donald Knuth', 'don@example.com', 'Stanford', '2026-04-15T16:40:00Z'),
  (8, 'Margaret Hamilton', 'margaret@example.com', 'Cambridge', '2026-05-01T07:55:00Z');

INSERT INTO products (id, name, price_cents, stock) VALUES
  (1, 'Mechanical keyboard', 12900, 40),
  (2, 'Trackball mouse', 5900, 75),
  (3, '27" monitor', 32900, 12),
  (4, 'USB-C dock', 15900, 30),
  (5, 'Noise-cancelling headphones', 24900, 18),
  (6, 'Laptop stand', 3900, 120);

INSERT INTO orders (id, customer_id, status, placed_at) VALUES
  (1, 1, 'delivered', '2026-06-01T10:00:00Z'),
  (2, 1, 'shipped', '2026-09-14T15:30:00Z'),
  (3, 2, 'delivered', '2026-06-20T09:45:00Z'),
  (4, 3, 'placed', '2026-11-02T18:10:00Z'),
  (5, 3, 'cancelled', '2026-07-08T11:25:00Z'),
  (6, 4, 'delivered', '2026-08-30T13:00:00Z'),
  (7, 5, 'shipped', '2026-10-21T08:35:00Z'),
  (8, 6, 'placed', '2026-11-18T19:50:00Z'),
  (9, 7, 'delivered', '2026-05-12T12:15:00Z'),
  (10, 7, 'delivered', '2026-09-03T16:05:00Z'),
  (11, 2, 'placed', '2026-11-19T07:40:00Z');

INSERT INTO order_items (order_id, product_id, quantity) VALUES
  (1, 1, 1), (1, 6, 1),
  (2, 3, 2),
  (3, 2, 1), (3, 4, 1),
  (4, 5, 1),
  (5, 1, 1),
  (6, 3, 1), (6, 6, 2),
  (7, 4, 1), (7, 2, 2),
  (8, 5, 1), (8, 1, 1),
  (9, 6, 3),
  (10, 3, 1), (10, 4, 1), (10, 2, 1),
  (11, 1, 2);

INSERT INTO accounts (id, owner, balance_cents) VALUES
  (1, 'Ada Lovelace', 150000),
  (2, 'Grace Hopper', 42000),
  (3, 'Shop revenue', 0);
