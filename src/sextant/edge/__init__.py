"""What every face shares at the HTTP edge: bodies, request ids and access logs, the route registry."""
