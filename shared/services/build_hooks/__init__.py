"""Native build webhooks: a platform's delivery becomes the same registration and release as
`POST /api/artifacts`, or a recorded reason why it does not."""
