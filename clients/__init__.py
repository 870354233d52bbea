"""Clients of the outside world: Smartcar, its simulator, and callers of the gateway."""
