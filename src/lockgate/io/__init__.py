"""Datasets: reading and writing tables (files, object storage, SQL databases, HTTP APIs) as
streams of Arrow record batches. Heavy libraries are imported where they are used."""
