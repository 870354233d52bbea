"""Persistence for the gateway (SQLAlchemy models, repositories, token encryption)."""
