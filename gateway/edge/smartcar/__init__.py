"""The Smartcar adapter: the core's `SmartcarAPI` port over `clients.smartcar` (`adapter`),
the translation of Smartcar's failures into the core's errors and upstream failures
(`failures`), and Smartcar's webhook wire format, the event envelope and its signals,
decoded into the core's reports (`events`, `signals`: the `WebhookDecoder` port)."""
