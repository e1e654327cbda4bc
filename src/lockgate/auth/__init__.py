"""Accounts and access: users, roles and per-pipeline grants, passwords and API tokens."""
