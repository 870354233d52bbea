"""vehicle-gateway: the gRPC service in front of Smartcar (server, policies, CLI)."""
