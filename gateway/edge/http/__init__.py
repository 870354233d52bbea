"""The HTTP adapters: the Smartcar webhook receiver and the Prometheus metrics endpoint."""
