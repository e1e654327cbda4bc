"""Secure test-data provisioning: production customers and orders to the staging zone, masked.

extract (production tables to Parquet in the prod zone) -> scan and classify -> mask (e-mails
and customer ids tokenized so joins still work, cards truncated, SSNs, names and addresses
redacted, dates of birth generalised to the year, PII inside support notes redacted) -> checks
(row counts, referential integrity, no raw PII left) -> load into the staging zone through the
policy gate. Lineage, policy decisions and every step land in the audit chain.
"""

from lockgate import copy, mask, pipeline, scan, task

CUSTOMER_RULES = [
    {"column": "customer_id", "op": "tokenize"},
    {"column": "full_name", "op": "redact", "classification": "pii.name"},
    {
        "column": "email",
        "op": "tokenize",
        "classification": "pii.email",
        "options": {"keep_domain": True},
    },
    {"column": "phone", "op": "redact", "classification": "pii.phone"},
    {"column": "card_number", "op": "truncate", "classification": "pci.pan"},
    {"column": "ssn", "op": "redact", "classification": "pii.ssn"},
    {"column": "street_address", "op": "redact", "classification": "pii.address"},
    {
        "column": "date_of_birth",
        "op": "generalize",
        "options": {"to": "year"},
        "classification": "pii.dob",
    },
    {"column": "support_notes", "op": "redact_text", "classification": "free_text"},
]
ORDER_RULES = [
    {"column": "customer_id", "op": "tokenize"},
    {
        "column": "customer_email",
        "op": "tokenize",
        "classification": "pii.email",
        "options": {"keep_domain": True},
    },
]
PROD = "sqlite:///data/production.db"
STAGING = "sqlite:///data/staging.db"


@task
def verify(found: dict, customers: dict, orders: dict, masked_c: dict, masked_o: dict) -> dict:
    """Nothing lost on the way (row counts match) and no raw PII class left in what goes to
    staging (a scan of the masked customers finds only masked classes)."""
    for source, copy_ in ((customers, masked_c), (orders, masked_o)):
        if source["rows"] != copy_["rows"]:
            raise ValueError(f"{copy_['target']}: {copy_['rows']} rows, {source['rows']} extracted")
    raw = [
        f"{c['name']} ({c['classification']})"
        for c in found["columns"]
        if c["classification"] and "/" not in c["classification"]
    ]
    if raw:
        raise ValueError(f"raw personal data left after masking: {', '.join(raw)}")
    return {"rows": [masked_c["rows"], masked_o["rows"]], "raw_pii_columns": 0}


with pipeline("provision_test_data", description=__doc__.splitlines()[0]) as p:
    extract_customers = copy(
        "extract_customers", source=f"{PROD}#customers", target="work/customers.parquet"
    )
    extract_orders = copy("extract_orders", source=f"{PROD}#orders", target="work/orders.parquet")
    classify = scan("classify", input="work/customers.parquet")
    masked_customers = mask(
        "mask_customers",
        input="work/customers.parquet",
        output="work/masked/customers.parquet",
        rules=CUSTOMER_RULES,
    )
    masked_orders = mask(
        "mask_orders",
        input="work/orders.parquet",
        output="work/masked/orders.parquet",
        rules=ORDER_RULES,
    )
    rescan = scan("scan_masked", input="work/masked/customers.parquet")
    checked = verify(rescan, extract_customers, extract_orders, masked_customers, masked_orders)
    load_customers = copy(
        "load_customers",
        source="work/masked/customers.parquet",
        target=f"{STAGING}#customers",
        checks=[{"unique": "customer_id"}, {"not_null": ["customer_id", "email"]}],
    )
    load_orders = copy(
        "load_orders",
        source="work/masked/orders.parquet",
        target=f"{STAGING}#orders",
        checks=[
            {
                "references": {
                    "column": "customer_id",
                    "dataset": "work/masked/customers.parquet",
                    "to": "customer_id",
                }
            }
        ],
    )
    extract_customers >> classify >> masked_customers >> rescan
    extract_orders >> masked_orders
    checked >> [load_customers, load_orders]
