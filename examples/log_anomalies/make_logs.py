"""A deterministic day of application logs (JSON lines) with three injected incidents.

    python make_logs.py [logs/app.jsonl] [--lines 20000] [--seed 11]

Each line is one request: ts, ip, user, method, path (with numeric ids and uuids), status,
latency_ms, ua (user agent), and sometimes authorization, referrer and message fields. Some
lines carry what must not leave the log: bearer tokens, passwords in URLs and in query
strings, e-mail addresses. Injected incidents (the ground truth, written to
logs/app.truth.json beside the log):

- error_rate: a burst of HTTP 5xx answers, 13:42 to 13:48 UTC;
- latency: GET /api/orders/{id} slow (over a second) from 15:10 to 15:30 UTC;
- user_ips: one user suddenly seen from dozens of IP addresses, 19:00 to 20:00 UTC.

The same seed gives the same bytes.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

DAY = datetime(2024, 1, 31, tzinfo=UTC)
USERS = 400
ENDPOINTS = [  # method, path template, weight, median latency (ms)
    ("GET", "/api/orders/{id}", 22, 60),
    ("GET", "/api/products/{id}", 25, 35),
    ("GET", "/api/users/{uuid}/profile", 12, 45),
    ("POST", "/api/orders", 8, 140),
    ("GET", "/api/search", 14, 90),
    ("POST", "/api/login", 6, 110),
    ("PUT", "/api/cart/{id}/items/{id}", 9, 70),
    ("GET", "/health", 4, 3),
]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.144 Mobile Safari/537.36",
    "okhttp/4.12.0",
    "curl/8.4.0",
    "python-requests/2.31.0",
]
FIRST = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
LAST = ["smith", "jones", "brown", "taylor", "wilson", "evans", "walker", "wright"]
DOMAINS = ["example.com", "example.org", "mail.example.net"]

ERROR_BURST = (DAY + timedelta(hours=13, minutes=42), DAY + timedelta(hours=13, minutes=48))
SLOW = (DAY + timedelta(hours=15, minutes=10), DAY + timedelta(hours=15, minutes=30))
SLOW_ENDPOINT = "GET /api/orders/{id}"
ROAMING = (DAY + timedelta(hours=19), DAY + timedelta(hours=20))
ROAMING_USER = "u0137"


def _ip(rng: random.Random) -> str:
    first = rng.choice([81, 92, 145, 176, 203])
    return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


TOKEN_CHARS = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _token(rng: random.Random, n: int = 32) -> str:
    return "".join(rng.choice(TOKEN_CHARS) for _ in range(n))


def _email(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)}.{rng.choice(LAST)}{rng.randrange(100)}@{rng.choice(DOMAINS)}"


def _path(rng: random.Random, template: str) -> str:
    out = template
    while "{id}" in out:
        out = out.replace("{id}", str(rng.randrange(1000, 999999)), 1)
    if "{uuid}" in out:
        out = out.replace("{uuid}", str(uuid.UUID(int=rng.getrandbits(128), version=4)))
    return out


def generate(lines: int = 20_000, seed: int = 11) -> tuple[list[dict], dict]:
    rng = random.Random(seed)
    users = [f"u{i:04d}" for i in range(USERS)]
    homes = {u: [_ip(rng) for _ in range(rng.choice([1, 1, 2, 2, 3]))] for u in users}
    agent_of = {u: rng.choice(AGENTS) for u in users}
    weights = [w for _, _, w, _ in ENDPOINTS]
    secrets: list[str] = []
    emails: list[str] = []
    # request times: a daily curve (quiet at night, busy in the afternoon)
    times = []
    while len(times) < lines:
        second = rng.uniform(0, 86400)
        busy = 0.35 + 0.65 * math.sin(math.pi * second / 86400) ** 2
        if rng.random() < busy:
            times.append(second)
    times.sort()
    records = []
    for second in times:
        ts = DAY + timedelta(seconds=second)
        user = rng.choice(users)
        method, template, _, median = rng.choices(ENDPOINTS, weights)[0]
        endpoint = f"{method} {template}"
        path = _path(rng, template)
        ip = rng.choice(homes[user])
        status = rng.choices([200, 201, 204, 304, 400, 401, 404, 500, 502, 503],
                             [70, 6, 3, 5, 4, 3, 6, 0.6, 0.3, 0.3])[0]  # fmt: skip
        latency = median * math.exp(rng.gauss(0, 0.35))
        if ERROR_BURST[0] <= ts < ERROR_BURST[1] and rng.random() < 0.6:
            status = rng.choice([500, 502, 503, 503])
            latency = median * 0.5 * math.exp(rng.gauss(0, 0.3))
        if SLOW[0] <= ts < SLOW[1] and endpoint == SLOW_ENDPOINT:
            latency = rng.uniform(1200, 3200)
        if ROAMING[0] <= ts < ROAMING[1] and rng.random() < 0.05:
            user, ip = ROAMING_USER, _ip(rng)  # the account is used from everywhere at once
        record = {
            "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "ip": ip,
            "user": user,
            "method": method,
            "path": path,
            "status": status,
            "latency_ms": round(latency, 1),
            "ua": agent_of[user] if rng.random() < 0.9 else rng.choice(AGENTS),
        }
        roll = rng.random()
        if roll < 0.02:  # a client sending its token where it is logged
            token = _token(rng)
            secrets.append(token)
            record["authorization"] = f"Bearer {token}"
        elif roll < 0.03:  # a password in a query string
            password = _token(rng, 12)
            secrets.append(password)
            record["path"] = f"/api/login?user={user}&password={password}"
            record["method"], record["status"] = "POST", 302
            record["latency_ms"] = round(110 * math.exp(rng.gauss(0, 0.35)), 1)
        elif roll < 0.04:  # a partner link with credentials in it
            password = _token(rng, 14)
            secrets.append(password)
            record["referrer"] = f"https://partner:{password}@partner.example.com/app"
        elif roll < 0.07:  # an e-mail in a search or in a message
            email = _email(rng)
            emails.append(email)
            if rng.random() < 0.5 and method == "GET" and template == "/api/search":
                record["path"] = f"/api/search?q={email}"
            else:
                record["message"] = f"password reset requested for {email}"
        if method == "GET" and template == "/api/search" and "?" not in record["path"]:
            record["path"] += f"?q=item{rng.randrange(500)}"
        records.append(record)
    truth = {
        "day": DAY.date().isoformat(),
        "lines": len(records),
        "incidents": [
            {"kind": "error_rate", "start": _iso(ERROR_BURST[0]), "end": _iso(ERROR_BURST[1])},
            {
                "kind": "latency",
                "endpoint": SLOW_ENDPOINT,
                "start": _iso(SLOW[0]),
                "end": _iso(SLOW[1]),
            },
            {
                "kind": "user_ips",
                "user": ROAMING_USER,
                "start": _iso(ROAMING[0]),
                "end": _iso(ROAMING[1]),
            },
        ],
        # what the redacted log and the alerts must not hold (the test checks it)
        "sensitive": {"secrets": sorted(set(secrets)), "emails": sorted(set(emails))},
    }
    return records, truth


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", nargs="?", default="logs/app.jsonl")
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    records, truth = generate(args.lines, args.seed)
    log = Path(args.log)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8", newline="\n") as out:
        for record in records:
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
    truth_file = log.with_suffix(".truth.json")
    truth_file.write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    print(
        f"wrote {log}: {len(records)} lines on {truth['day']}, "
        f"{len(truth['incidents'])} injected incidents (ground truth in {truth_file})"
    )


if __name__ == "__main__":
    main()
