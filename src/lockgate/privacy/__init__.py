"""Privacy: find PII and secrets in tables and text, and mask, tokenize, encrypt or generalise it.

Arrow in, Arrow out. Nothing here is imported by `import lockgate`; pyarrow, numpy, phonenumbers
and cryptography load when a privacy function is first used.
"""
