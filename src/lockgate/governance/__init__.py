"""Governance: zones and the policy gate, the audit chain, lineage and compliance reports."""
