"""A month of synthetic, HOURLY cloud billing lines shaped like an AWS Cost and Usage Report
(CUR) export, with injected cases and their ground truth.

    python make_billing.py      # -> billing/cur-2024-03.csv and billing/truth.json

Deterministic (seeded): 3 accounts, 5 services, 200 resources, 744 hours = 148,800 lines.
`lineItem/UsageAmount` of instances (EC2, RDS) is the share of the instance that was busy in the
hour (as in an export joined with CloudWatch utilisation); other services carry their usual
quantities (GB-month, requests...). Injected: 4 idle instances (billed every hour, usage ~0) and
one account/service whose daily cost grows 8 % a day.
"""

from __future__ import annotations

import csv
import json
import random
from datetime import datetime, timedelta
from pathlib import Path

SEED = 2024
MONTH = datetime(2024, 3, 1)
DAYS = 31
ACCOUNTS = ["111111111111", "222222222222", "333333333333"]
TEAMS = {"111111111111": "web", "222222222222": "data", "333333333333": "ml"}
SERVICES = {  # product code: (usage type, hourly cost range)
    "AmazonEC2": ("BoxUsage:m5.large", (0.08, 0.40)),
    "AmazonRDS": ("InstanceUsage:db.r5.large", (0.20, 0.60)),
    "AmazonS3": ("TimedStorage-ByteHrs", (0.01, 0.05)),
    "AWSLambda": ("Lambda-GB-Second", (0.005, 0.03)),
    "AmazonDynamoDB": ("ReadCapacityUnit-Hrs", (0.01, 0.06)),
}
INSTANCES = {"AmazonEC2", "AmazonRDS"}
RESOURCES = 200
IDLE = 4  # instances billed every hour with ~0 usage
GROWING = ("222222222222", "AWSLambda")
GROWTH = 0.08  # a day
COLUMNS = [
    "identity/LineItemId",
    "lineItem/UsageAccountId",
    "lineItem/UsageStartDate",
    "lineItem/UsageEndDate",
    "lineItem/ProductCode",
    "lineItem/ResourceId",
    "lineItem/UsageType",
    "lineItem/UsageAmount",
    "lineItem/UnblendedCost",
    "resourceTags/user:team",
]


def _resource_id(rng: random.Random, service: str, account: str, n: int) -> str:
    if service == "AmazonEC2":
        return f"i-{rng.getrandbits(68):017x}"
    if service == "AmazonRDS":
        return f"arn:aws:rds:eu-west-1:{account}:db:db-{n:03d}"
    if service == "AmazonS3":
        return f"bucket-{account[-3:]}-{n:03d}"
    if service == "AWSLambda":
        return f"arn:aws:lambda:eu-west-1:{account}:function:fn-{n:03d}"
    return f"arn:aws:dynamodb:eu-west-1:{account}:table/t-{n:03d}"


def main() -> None:
    rng = random.Random(SEED)
    resources = []
    services = list(SERVICES)
    for n in range(RESOURCES):
        account = ACCOUNTS[n % len(ACCOUNTS)]
        service = services[(n // len(ACCOUNTS)) % len(services)]
        low, high = SERVICES[service][1]
        resources.append(
            {
                "account": account,
                "service": service,
                "id": _resource_id(rng, service, account, n),
                "cost": round(rng.uniform(low, high), 4),
                "idle": False,
            }
        )
    instances = [r for r in resources if r["service"] in INSTANCES]
    for r in rng.sample(instances, IDLE):
        r["idle"] = True
    out = Path("billing")
    out.mkdir(exist_ok=True)
    day_noise = {
        (a, s, d): rng.uniform(0.9, 1.1) for a in ACCOUNTS for s in SERVICES for d in range(DAYS)
    }
    lines = 0
    with open(out / "cur-2024-03.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for h in range(DAYS * 24):
            start = MONTH + timedelta(hours=h)
            day, hour = divmod(h, 24)
            stamp = f"{start:%Y-%m-%dT%H:%M:%SZ}"
            end = f"{start + timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ}"
            for r in resources:
                service, account = r["service"], r["account"]
                if service in INSTANCES:
                    busy = 0.35 + 0.45 * (8 <= hour < 20)
                    usage = 0.004 * rng.random() if r["idle"] else busy * rng.uniform(0.5, 1.2)
                    cost = r["cost"]  # an instance costs the same busy or not
                else:
                    usage = rng.uniform(50, 500)
                    cost = r["cost"] * day_noise[(account, service, day)] * rng.uniform(0.8, 1.2)
                    if (account, service) == GROWING:
                        cost *= (1 + GROWTH) ** day
                lines += 1
                w.writerow(
                    [
                        f"li-{lines:08d}",
                        account,
                        stamp,
                        end,
                        service,
                        r["id"],
                        SERVICES[service][0],
                        f"{usage:.6f}",
                        f"{cost:.8f}",
                        TEAMS[account],
                    ]
                )
    truth = {
        "lines": lines,
        "idle": [
            {"account": r["account"], "service": r["service"], "resource_id": r["id"]}
            for r in resources
            if r["idle"]
        ],
        "growing": [{"account": GROWING[0], "service": GROWING[1], "daily_growth": GROWTH}],
    }
    (out / "truth.json").write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    print(
        f"wrote billing/cur-2024-03.csv: {lines} hourly lines, {len(ACCOUNTS)} accounts, "
        f"{len(SERVICES)} services, {IDLE} idle instances, 1 growing service"
    )


if __name__ == "__main__":
    main()
