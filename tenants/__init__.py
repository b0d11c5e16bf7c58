"""The tenant-owned domain: models and the services that change them."""
