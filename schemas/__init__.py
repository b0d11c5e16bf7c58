"""Marshmallow schemas, one module per resource, shared by the API and CSV import."""
