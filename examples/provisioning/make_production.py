"""Generate the demo's "production" database: customers and their orders, with the personal
data a real shop holds (names, e-mails, phones, cards, SSNs, addresses, dates of birth, free-text
support notes). Deterministic: the same seed gives the same rows, byte for byte.

    python make_production.py [data/production.db] [--customers 2000] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
from datetime import date, timedelta
from pathlib import Path

NOTES = [
    "Customer {name} called about order {order}; asked us to reach her at {email}.",
    "Changed shipping address to {address} after a call from {phone}.",
    "Card ending {last4} was declined twice; customer will call back on {phone}.",
    "Identity check passed with SSN {ssn} for a refund of order {order}.",
    "Prefers e-mail ({email}) over phone.",
    "No issue reported.",
]


def generate(path: Path, customers: int = 2000, seed: int = 7) -> dict[str, int]:
    """Write the database at `path` (replacing it); the row counts per table."""
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE customers (
            customer_id INTEGER PRIMARY KEY, full_name TEXT NOT NULL, email TEXT NOT NULL,
            phone TEXT, card_number TEXT, ssn TEXT, street_address TEXT, date_of_birth TEXT,
            signup_date TEXT, support_notes TEXT);
        CREATE TABLE orders (
            order_id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL
                REFERENCES customers (customer_id),
            customer_email TEXT NOT NULL, order_date TEXT, amount REAL, status TEXT);
        """
    )
    start = date(2024, 1, 1)
    people, order_rows = [], []
    order_id = 100_000
    for customer_id in range(1, customers + 1):
        name, email = fake.name(), fake.unique.email()
        phone, card, ssn = fake.phone_number(), fake.credit_card_number(), fake.ssn()
        address = fake.street_address() + ", " + fake.city()
        born = fake.date_of_birth(minimum_age=18, maximum_age=90).isoformat()
        signup = (start + timedelta(days=rng.randrange(600))).isoformat()
        orders = [order_id + i for i in range(rng.randrange(0, 5))]
        order_id += len(orders)
        note = rng.choice(NOTES).format(
            name=name,
            order=orders[0] if orders else "none",
            email=email,
            address=address,
            phone=phone,
            last4=card[-4:],
            ssn=ssn,
        )
        people.append((customer_id, name, email, phone, card, ssn, address, born, signup, note))
        for number in orders:
            day = (start + timedelta(days=rng.randrange(700))).isoformat()
            status = rng.choice(["paid", "shipped", "delivered", "refunded"])
            order_rows.append(
                (number, customer_id, email, day, round(rng.uniform(5, 900), 2), status)
            )
    db.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?,?,?,?,?)", people)
    db.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?)", order_rows)
    db.commit()
    db.close()
    return {"customers": len(people), "orders": len(order_rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", default="data/production.db")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    counts = generate(Path(args.path), args.customers, args.seed)
    print(
        f"production database {args.path}: {counts['customers']} customers, {counts['orders']} orders"
    )


if __name__ == "__main__":
    main()
