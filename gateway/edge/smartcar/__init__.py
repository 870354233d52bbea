"""The Smartcar adapter: the core's `Upstream` port over `clients.smartcar`, and the
translation of Smartcar's failures into the core's errors and upstream failures."""
