"""The Smartcar adapter: the core's `SmartcarAPI` port over `clients.smartcar` (`adapter`),
the translation of Smartcar's failures into the core's errors and upstream failures
(`failures`), the client's readings as the core's values (`values`), and Smartcar's
webhook wire format, the event envelope and its signals, decoded into the core's reports
(`events`, `signals`: the `WebhookDecoder` port).

API V3's pieces, built to be wired once V3 credentials reach the port: a `/signals` answer
as a `BatchReading` (`v3_readings`), a command's answer confirmed or of unknown outcome
(`v3_commands`), and the V3 webhook decoder (`v3_events`)."""
