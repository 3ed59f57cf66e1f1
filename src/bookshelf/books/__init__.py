"""The books feature: the catalog's core resource."""
