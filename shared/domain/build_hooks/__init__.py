"""Native build webhooks, the pure part: verify a platform's delivery and read it as a build (or a reason
why it is not one). No I/O here: the services download, register and release."""
